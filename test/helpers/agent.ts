import { createHash, randomBytes } from 'node:crypto';
import { chmod, lstat, mkdir, mkdtemp, open, readdir, readFile, readlink, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parsePack } from '../../format/index.js';
import { areaLayout } from '../../gateway/storage/data-dir.js';
import type { ContractChange } from '../../gateway/policy/contracts.js';
import { startTestGateway, type TestGateway, type TestUser } from './gateway.js';
import { kuraCli, makeTempDir, removeTempDir, repoRoot, run, watch, type RunResult, type Watched } from './processes.js';

/** The benchmark dataset generator (see its header): deterministic trees and mutations. */
import { genDataset } from './dataset.js';

export { genDataset };

/** The environment of one agent "PC": gateway, certificate files, key source, host and state folder. */
export type AgentEnv = Record<string, string>;

export interface AgentOptions {
  passphrase?: string;
  keyFile?: string;
  host?: string;
  /** The folder to create the agent's own folder in (default: the system's temp folder). */
  under?: string;
}

/** Writes the user's certificate, key and the gateway CA to a fresh folder and returns the agent env for them. */
export async function agentEnv(gw: TestGateway, user: TestUser, opts: AgentOptions = {}): Promise<AgentEnv> {
  const dir = opts.under ? await mkdtemp(join(opts.under, 'agent-')) : await makeTempDir('kura-agent-');
  await Promise.all([
    writeFile(join(dir, 'cert.pem'), user.certPem),
    writeFile(join(dir, 'key.pem'), user.keyPem, { mode: 0o600 }),
    writeFile(join(dir, 'ca.pem'), gw.caPem),
  ]);
  const env: AgentEnv = {
    KURA_GATEWAY: gw.url,
    KURA_CERT: join(dir, 'cert.pem'),
    KURA_KEY: join(dir, 'key.pem'),
    KURA_CA: join(dir, 'ca.pem'),
    KURA_HOST: opts.host ?? 'pc1',
    KURA_STATE_DIR: join(dir, 'state'),
    HOME: dir,
  };
  if (opts.passphrase) env.KURA_PASSPHRASE = opts.passphrase;
  if (opts.keyFile) env.KURA_KEY_FILE = opts.keyFile;
  return env;
}

/** process.env without any KURA_* setting of the machine running the tests, plus the agent's. */
function childEnv(env: AgentEnv): NodeJS.ProcessEnv {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('KURA_')));
  return { ...base, ...env };
}

/** Runs `kura ARGS` as the agent with env, asynchronously (the gateway in this process keeps serving). */
export function agent(env: AgentEnv, args: string[], timeoutMs = 120_000): Promise<RunResult> {
  return run(process.execPath, [kuraCli, ...args], { cwd: repoRoot, env: childEnv(env), timeoutMs });
}

/** Starts `kura ARGS` and returns it running, its output watched. */
export function startAgent(env: AgentEnv, args: string[]): Watched {
  return watch(process.execPath, [kuraCli, ...args], { cwd: repoRoot, env: childEnv(env) });
}

/** Runs a command and fails loudly unless it exits 0; returns its stdout. */
export async function mustRun(command: string, args: string[]): Promise<string> {
  const r = await run(command, args, { timeoutMs: 120_000 });
  if (r.code !== 0) throw new Error(`${command} ${args.join(' ')} exited ${r.code}:\n${r.stderr}`);
  return r.stdout;
}

/** `kura ...` that must succeed; returns stdout. */
export async function mustAgent(env: AgentEnv, args: string[]): Promise<string> {
  const r = await agent(env, args);
  if (r.code !== 0) throw new Error(`kura ${args.join(' ')} exited ${r.code} (${r.signal}):\n${r.stderr}\n${r.stdout}`);
  return r.stdout;
}

export interface BackupSummary {
  event: 'summary';
  snapshot: string;
  bytesUploaded: number;
  bytesRead: number;
  packs: number;
}

/** The summary event (last NDJSON line) of `backup --json`. */
export function summaryOf(stdout: string): BackupSummary {
  const lines = stdout.trim().split('\n');
  const last = JSON.parse(lines[lines.length - 1] ?? '{}') as BackupSummary;
  if (last.event !== 'summary') throw new Error(`no summary in backup output:\n${stdout}`);
  return last;
}

/** Backs up dirs with --json and returns the summary. */
export async function backup(env: AgentEnv, dirs: string[], extra: string[] = []): Promise<BackupSummary> {
  return summaryOf(await mustAgent(env, ['backup', ...dirs, '--json', ...extra]));
}

/** Creates the benchmark dataset in dir (which must not exist or be empty). */
export async function createDataset(dir: string, scale = 'tiny', seed = 1): Promise<void> {
  await mustRun(process.execPath, [genDataset, 'create', dir, '--scale', scale, '--seed', String(seed)]);
}

/** Applies mutation round k to dir; returns the bytes that really changed. */
export async function mutateDataset(dir: string, round: number): Promise<number> {
  const out = JSON.parse(await mustRun(process.execPath, [genDataset, 'mutate', dir, '--round', String(round)])) as {
    changedBytes: number;
  };
  return out.changedBytes;
}

/** `cp -a`: a copy keeping modes, times and symlinks. */
export async function copyAside(from: string, to: string): Promise<void> {
  await mustRun('cp', ['-a', from, to]);
}

/** What a comparison looks at for one path: kind, permission bits, mtime (ms), size and content hash or link target. */
export interface NodeFacts {
  type: 'file' | 'dir' | 'symlink' | 'other';
  mode: number;
  mtimeMs: bigint | null;
  size: number;
  content: string;
}

/** Every path below root (root itself as '.'), with its facts. Symlink mtimes are not compared. */
export async function treeFacts(root: string): Promise<Map<string, NodeFacts>> {
  const out = new Map<string, NodeFacts>();
  const visit = async (rel: string): Promise<void> => {
    const path = rel === '.' ? root : join(root, rel);
    const st = await lstat(path, { bigint: true });
    const mode = Number(st.mode & 0o7777n);
    const mtimeMs = st.mtimeNs / 1_000_000n;
    if (st.isSymbolicLink()) out.set(rel, { type: 'symlink', mode: 0, mtimeMs: null, size: 0, content: await readlink(path) });
    else if (st.isFile()) out.set(rel, { type: 'file', mode, mtimeMs, size: Number(st.size), content: await sha256File(path) });
    else if (st.isDirectory()) {
      out.set(rel, { type: 'dir', mode, mtimeMs, size: 0, content: '' });
      for (const name of (await readdir(path)).sort()) await visit(rel === '.' ? name : `${rel}/${name}`);
    } else out.set(rel, { type: 'other', mode, mtimeMs, size: 0, content: '' });
  };
  await visit('.');
  return out;
}

async function sha256File(path: string): Promise<string> {
  return createHash('sha256')
    .update(await readFile(path))
    .digest('hex');
}

/** Differences between two trees, as readable lines (empty when identical). */
export function diffTrees(expected: Map<string, NodeFacts>, actual: Map<string, NodeFacts>, ignore: string[] = []): string[] {
  const lines: string[] = [];
  const keep = (rel: string) => !ignore.includes(rel);
  for (const [rel, want] of expected) {
    if (!keep(rel)) continue;
    const got = actual.get(rel);
    if (!got) lines.push(`missing: ${rel}`);
    else
      for (const key of ['type', 'mode', 'mtimeMs', 'size', 'content'] as const) {
        if (want[key] !== got[key]) lines.push(`${rel}: ${key} ${String(want[key])} != ${String(got[key])}`);
      }
  }
  for (const rel of actual.keys()) if (keep(rel) && !expected.has(rel)) lines.push(`unexpected: ${rel}`);
  return lines.slice(0, 20);
}

/** Paths of regular files below dir (recursively), absolute. */
export async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  const out: string[] = [];
  for (const e of entries) {
    const path = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await filesUnder(path)));
    else if (e.isFile()) out.push(path);
  }
  return out;
}

/** Every name below dir, recursively (relative), whatever its kind. */
export async function namesUnder(dir: string, prefix = ''): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  const out: string[] = [];
  for (const e of entries) {
    out.push(prefix + e.name);
    if (e.isDirectory()) out.push(...(await namesUnder(join(dir, e.name), `${prefix}${e.name}/`)));
  }
  return out;
}

/** The user's pack folder on the gateway's disk. */
export function packsDir(gw: TestGateway, user: TestUser): string {
  return join(areaLayout(gw.policy.layout, user.id).kura, 'packs');
}

/** The pack files stored for the user, with their sizes. */
export async function storedPacks(gw: TestGateway, user: TestUser): Promise<{ path: string; size: number }[]> {
  const files = await filesUnder(packsDir(gw, user));
  return Promise.all(files.map(async (path) => ({ path, size: (await lstat(path)).size })));
}

export async function packBytes(gw: TestGateway, user: TestUser): Promise<number> {
  return (await storedPacks(gw, user)).reduce((sum, p) => sum + p.size, 0);
}

/** Resolves once at least n packs are stored for the user (polling the disk), or rejects after timeoutMs. */
export async function waitForPacks(gw: TestGateway, user: TestUser, n: number, agentRun: Watched, timeoutMs = 60_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const count = (await filesUnder(packsDir(gw, user))).length;
    if (count >= n) return count;
    if (agentRun.child.exitCode !== null) throw new Error(`the backup ended before ${n} packs were stored:\n${agentRun.output()}`);
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${n} packs`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Resolves once path exists (polling), or rejects when the agent exits first or after timeoutMs. */
export async function waitForFile(path: string, agentRun: Watched, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await lstat(path).catch(() => null))) {
    if (agentRun.child.exitCode !== null) throw new Error(`the agent ended before ${path} appeared:\n${agentRun.output()}`);
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${path}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A spawned child's exit, as code and signal. */
export function exitOf(w: Watched): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  const c = w.child;
  if (c.exitCode !== null || c.signalCode !== null) return Promise.resolve({ code: c.exitCode, signal: c.signalCode });
  return new Promise((r) => c.once('exit', (code, signal) => r({ code, signal })));
}

/**
 * Adds what the benchmark dataset lacks: unusual modes (0600 and 0755 files in a 0700 folder), an empty
 * file, an empty folder and symlinks to a file and to a folder. They live under media/ and sort after
 * the generator's large files, so `mutate` (which follows links and edits media/'s first two files) leaves them alone.
 */
export async function decorateTree(dir: string): Promise<void> {
  const perm = join(dir, 'media', 'perm');
  await mkdir(perm, { recursive: true });
  await writeFile(join(perm, 'secret.txt'), 'only for me\n', { mode: 0o600 });
  await writeFile(join(perm, 'run.sh'), '#!/bin/sh\necho hi\n', { mode: 0o755 });
  await writeFile(join(perm, 'empty.txt'), '');
  await chmod(join(perm, 'secret.txt'), 0o600);
  await chmod(join(perm, 'run.sh'), 0o755);
  await chmod(perm, 0o700);
  await mkdir(join(dir, 'media', 'void'));
  await symlink('large_1.bin', join(dir, 'media', 'zlink'));
  await symlink('../copies', join(dir, 'media', 'zdir'));
}

/** A small tree of every kind: text files, a multi-chunk random file (unless randomSize is 0), modes, a symlink, an empty folder. */
export async function smallTree(dir: string, randomSize = 3 << 20): Promise<void> {
  await mkdir(join(dir, 'sub', 'deeper'), { recursive: true });
  await writeFile(join(dir, 'a.txt'), 'hello kura\n');
  await writeFile(join(dir, 'sub', 'b.md'), '# notes\n'.repeat(500));
  if (randomSize > 0) await writeFile(join(dir, 'sub', 'deeper', 'random.bin'), randomBytes(randomSize));
  await writeFile(join(dir, 'tool.sh'), '#!/bin/sh\n');
  await chmod(join(dir, 'tool.sh'), 0o755);
  await chmod(join(dir, 'sub'), 0o700);
  await mkdir(join(dir, 'empty'));
  await symlink('sub/b.md', join(dir, 'link-to-b'));
}

/** Writes n files of `size` random bytes into dir. */
export async function randomFiles(dir: string, n: number, size: number, prefix = 'random'): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (let i = 0; i < n; i++) await writeFile(join(dir, `${prefix}_${i}.bin`), randomBytes(size));
}

/**
 * Flips one byte in the middle of the largest data blob of the largest stored pack, on the gateway's
 * disk. Returns the pack's path and the blob's id.
 */
export async function corruptBiggestPack(gw: TestGateway, user: TestUser): Promise<{ pack: string; blob: string }> {
  const packs = (await storedPacks(gw, user)).sort((a, b) => b.size - a.size);
  const pack = packs[0];
  if (!pack) throw new Error('no pack stored');
  const { entries } = parsePack(await readFile(pack.path));
  const blob = entries.filter((e) => e.type === 'data').sort((a, b) => b.length - a.length)[0];
  if (!blob) throw new Error('the biggest pack holds no data blob');
  const at = blob.offset + Math.floor(blob.length / 2);
  const fh = await open(pack.path, 'r+');
  try {
    const one = Buffer.alloc(1);
    await fh.read(one, 0, 1, at);
    one[0] = (one[0] ?? 0) ^ 0xff;
    await fh.write(one, 0, 1, at);
  } finally {
    await fh.close();
  }
  return { pack: pack.path, blob: blob.id };
}

/**
 * Plays a gateway that serves one genuine blob in place of another: in a stored pack, the bytes of
 * two data blobs of the same stored length change places on disk (the index still lists each at its
 * old offset). Returns their ids; throws when no pack holds such a pair.
 */
export async function swapTwinBlobs(gw: TestGateway, user: TestUser): Promise<[string, string]> {
  for (const pack of await storedPacks(gw, user)) {
    const bytes = await readFile(pack.path);
    const data = parsePack(bytes).entries.filter((e) => e.type === 'data');
    const a = data.find((e) => data.some((f) => f !== e && f.length === e.length));
    const b = a && data.find((f) => f !== a && f.length === a.length);
    if (!a || !b) continue;
    const first = Buffer.from(bytes.subarray(a.offset, a.offset + a.length));
    bytes.copy(bytes, a.offset, b.offset, b.offset + b.length);
    first.copy(bytes, b.offset);
    await writeFile(pack.path, bytes);
    return [a.id, b.id];
  }
  throw new Error('no pack holds two data blobs of the same length');
}

/** A gateway of its own, a temp folder, and one user whose repository (encrypted unless opts.plaintext) is initialised; the tiny dataset at <work>/data. */
export interface AgentFixture {
  gw: TestGateway;
  work: string;
  user: TestUser;
  env: AgentEnv;
  src: string;
  close(): Promise<void>;
}

export async function agentFixture(
  userName: string,
  contract: ContractChange = {},
  opts: { plaintext?: boolean } = {},
): Promise<AgentFixture> {
  const gw = await startTestGateway();
  const work = await makeTempDir(`kura-${userName}-`);
  const user = await gw.addUser(userName, contract);
  const env = await agentEnv(gw, user, { passphrase: opts.plaintext ? undefined : `${userName} passphrase`, under: work });
  await mustAgent(env, opts.plaintext ? ['key', 'init', '--plaintext'] : ['key', 'init']);
  const src = join(work, 'data');
  await createDataset(src);
  return {
    gw,
    work,
    user,
    env,
    src,
    async close() {
      await gw.close();
      await removeTempDir(work);
    },
  };
}
