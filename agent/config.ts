import { readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { z } from 'zod';
import type { KeepPolicy } from './retention.js';

/**
 * The agent's settings. Precedence, lowest first: the config file (--config or KURA_CONFIG), then the
 * environment (KURA_GATEWAY, KURA_CERT, KURA_KEY, KURA_CA, KURA_PASSPHRASE, KURA_KEY_FILE, KURA_HOST —
 * so a script needs no file, as with restic), then command-line flags.
 */
const FileConfig = z
  .object({
    gateway: z.string().url(),
    cert: z.string(),
    key: z.string(),
    ca: z.string(),
    host: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/),
    folders: z.array(z.string()),
    exclude: z.array(z.string()),
    keyFile: z.string(),
    passphraseFile: z.string(),
    /** `kura agent`: backups on cron schedules, e.g. [{"cron": "0 * * * *", "type": "incremental"}]. */
    schedules: z.array(z.strictObject({ cron: z.string().min(1), type: z.enum(['incremental', 'differential', 'full', 'copy']) })),
    /** The retention policy `kura forget` applies without --keep-* flags, e.g. {"last": 7, "daily": 14}. */
    keep: z
      .strictObject({
        last: z.number().int().nonnegative(),
        hourly: z.number().int().nonnegative(),
        daily: z.number().int().nonnegative(),
        weekly: z.number().int().nonnegative(),
        monthly: z.number().int().nonnegative(),
        yearly: z.number().int().nonnegative(),
      })
      .partial(),
    /**
     * When a snapshot would exceed the contract's limit, forget by `keep` (and then the oldest
     * snapshots of this host) to make room, instead of failing the backup. Needs a certificate with the
     * delete right.
     */
    keepWithinPlan: z.boolean(),
  })
  .partial()
  .strict();

export type AgentConfig = {
  gateway: string;
  cert: string;
  key: string;
  ca?: string;
  host: string;
  folders: string[];
  exclude: string[];
  keyFile?: string;
  passphrase?: string;
  schedules: Schedule[];
  keep: KeepPolicy;
  keepWithinPlan: boolean;
};

export interface Schedule {
  cron: string;
  type: 'incremental' | 'differential' | 'full' | 'copy';
}

export interface ConfigFlags {
  config?: string;
  gateway?: string;
  cert?: string;
  key?: string;
  ca?: string;
  host?: string;
  exclude?: string[];
  keyFile?: string;
}

export class ConfigError extends Error {}

/** Loads and merges the settings; throws ConfigError naming what is missing or wrong. */
export async function loadConfig(flags: ConfigFlags, env: NodeJS.ProcessEnv = process.env): Promise<AgentConfig> {
  const file = await readConfigFile(flags.config ?? env.KURA_CONFIG);
  const pick = (flag: string | undefined, envName: string, fromFile: string | undefined) => flag ?? env[envName] ?? fromFile;
  const gateway = pick(flags.gateway, 'KURA_GATEWAY', file.gateway);
  const cert = pick(flags.cert, 'KURA_CERT', file.cert);
  const key = pick(flags.key, 'KURA_KEY', file.key);
  if (!gateway || !cert || !key) {
    throw new ConfigError(
      'the gateway URL, client certificate and key are needed: set KURA_GATEWAY, KURA_CERT and KURA_KEY, or --gateway/--cert/--key, or a config file',
    );
  }
  return {
    gateway,
    cert,
    key,
    ca: pick(flags.ca, 'KURA_CA', file.ca),
    host: pick(flags.host, 'KURA_HOST', file.host) ?? safeHostname(),
    folders: file.folders ?? [],
    schedules: file.schedules ?? [],
    keep: file.keep ?? {},
    keepWithinPlan: file.keepWithinPlan ?? false,
    exclude: [...(file.exclude ?? []), ...(flags.exclude ?? [])],
    keyFile: pick(flags.keyFile, 'KURA_KEY_FILE', file.keyFile),
    passphrase: env.KURA_PASSPHRASE ?? (file.passphraseFile ? (await readFile(file.passphraseFile, 'utf8')).trim() : undefined),
  };
}

async function readConfigFile(path: string | undefined): Promise<z.infer<typeof FileConfig>> {
  if (!path) return {};
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    throw new ConfigError(`cannot read the config file ${path}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new ConfigError(`the config file ${path} is not valid JSON`);
  }
  const parsed = FileConfig.safeParse(raw);
  if (!parsed.success)
    throw new ConfigError(
      `the config file ${path} is wrong: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
    );
  return parsed.data;
}

function safeHostname(): string {
  return (
    hostname()
      .replace(/[^A-Za-z0-9._-]/g, '-')
      .slice(0, 64) || 'pc'
  );
}
