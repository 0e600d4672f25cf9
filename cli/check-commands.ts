import { resolve } from 'node:path';
import type { Command } from 'commander';
import type { CheckReport } from '../agent/check.js';
import { connect, withConnection, type CommonFlags } from './agent-commands.js';
import { chooseMode, formatBytes, Progress, type SummaryField } from '../agent/progress.js';
import { fail, report } from './output.js';

/**
 * `kura check` (the agent, with the key, through the gateway) and `kura admin check USER` (the
 * gateway's data folder, without the key). Exit codes of both: 0 nothing wrong, 3 damage found
 * (as restore uses for damaged files), 1 an error stopped the check; `admin check` also 2 when the
 * request is refused (no such user).
 */
export const EXIT_DAMAGED = 3;

interface CheckFlags extends CommonFlags {
  readData?: boolean;
}

export function addCheckCommand(program: Command, run: (fn: () => Promise<void>, json?: boolean) => Promise<void>): void {
  withConnection(
    program
      .command('check')
      .description('verify the backups on the gateway: every snapshot and tree readable, every blob present (--read-data: and intact)')
      .option('--read-data', 'download and verify every data blob too (reads the whole repository)'),
  ).action((flags: CheckFlags) => run(() => agentCheck(flags), flags.json));
}

async function agentCheck(flags: CheckFlags): Promise<void> {
  const [{ Repository }, { runCheck, isDamaged }] = await Promise.all([import('../agent/repository.js'), import('../agent/check.js')]);
  const { config, remote } = await connect(flags);
  // No local index cache: the check looks at what the gateway holds now.
  const repo = await Repository.open(
    remote,
    { passphrase: config.passphrase, keyFile: config.keyFile },
    { prefetch: { index: true, snapshotsOf: '' } },
  );
  const mode = chooseMode({ ...flags, isTTY: Boolean(process.stderr.isTTY) });
  const progress = new Progress({ operation: 'check', mode, out: mode === 'json' ? process.stdout : process.stderr });
  progress.start();
  const result = await runCheck(repo, {
    readData: Boolean(flags.readData),
    onPlan: (blobs, bytes) => progress.setTotals(blobs, bytes),
    onProgress: (blobs, bytes) => progress.add(blobs, bytes),
  });
  progress.stop();
  printAgentReport(result, progress, flags);
  if (isDamaged(result)) process.exitCode = EXIT_DAMAGED;
}

function printAgentReport(r: CheckReport, progress: Progress, flags: CheckFlags): void {
  if (flags.json)
    return void process.stdout.write(
      JSON.stringify({ event: 'summary', operation: 'check', status: isBad(r) ? 'damaged' : 'ok', ...r }) + '\n',
    );
  const fields: SummaryField[] = [
    { key: 'snapshots', label: 'snapshots', value: r.snapshots },
    { key: 'trees', label: 'folders (trees) read', value: r.trees },
    { key: 'dataBlobs', label: 'data blobs referenced', value: r.dataBlobs },
    { key: 'blobsRead', label: 'blobs downloaded and verified', value: r.blobsRead },
    { key: 'bytesRead', label: 'bytes read', value: r.bytesRead, unit: 'bytes' },
  ];
  const files = r.affected.reduce((n, a) => n + a.paths.length, 0);
  const title = isBad(r)
    ? `Check found damage: ${r.damaged.length} blob(s) in ${r.packs.length} pack(s); ${files} path(s) in ${r.affected.length} snapshot(s) affected`
    : `Check done: no damage found${r.readData ? '' : ' (data blobs located, not read: add --read-data to verify their bytes)'}`;
  progress.summary(fields, title);
  const out = flags.quiet ? process.stderr : process.stdout;
  for (const line of damageLines(r)) out.write(line + '\n');
}

function isBad(r: CheckReport): boolean {
  return r.damaged.length > 0 || r.unreadableSnapshots.length > 0;
}

/** The damage in plain words: snapshot records, then per pack its blobs, then the affected paths. */
export function damageLines(r: CheckReport): string[] {
  const lines: string[] = [];
  for (const s of r.unreadableSnapshots) lines.push(`Snapshot ${s.id} of ${s.host} cannot be read: ${s.reason}`);
  for (const d of r.damaged.filter((b) => !b.pack)) lines.push(`Missing ${d.type} blob ${d.id}: ${d.reason}`);
  for (const p of r.packs) {
    lines.push(`Damaged pack ${p.pack}:`);
    for (const d of r.damaged.filter((b) => b.pack === p.pack)) lines.push(`  ${d.type} blob ${d.id}: ${d.reason}`);
  }
  for (const a of r.affected) {
    lines.push(`Affected in snapshot ${a.id.slice(0, 12)} (${a.host}, ${a.time}):`);
    for (const path of a.paths) lines.push(`  ${path === '/' ? '(the whole snapshot: its root folder is lost)' : path}`);
  }
  return lines;
}

interface AdminCheckFlags {
  data: string;
  json?: boolean;
  repairIndex?: boolean;
}

export function addAdminCheckCommand(admin: Command): void {
  admin
    .command('check <user>')
    .description("check a user's packs (hash, layout, blobs of plaintext repositories) against the blob index; exit 3 on damage")
    .option('--repair-index', 'rebuild the blob index from the packs alone, atomically')
    .action(async (name: string, _opts: unknown, cmd: Command) => {
      const flags = cmd.optsWithGlobals<AdminCheckFlags>();
      const { Policy } = await import('../gateway/policy/policy.js');
      const policy = await Policy.open(resolve(flags.data));
      try {
        await adminCheck(policy, name, flags);
      } catch (err) {
        fail(err, flags);
      } finally {
        await policy.close();
      }
    });
}

async function adminCheck(policy: import('../gateway/policy/policy.js').Policy, name: string, flags: AdminCheckFlags): Promise<void> {
  const [{ areaLayout }, { checkArea, rebuildIndex }] = await Promise.all([
    import('../gateway/storage/data-dir.js'),
    import('../gateway/storage/pack-check.js'),
  ]);
  const user = await policy.users.get(name);
  const dirs = areaLayout(policy.layout, user.id);
  // Redrawn on a terminal only: the command's output is one document, as the other admin commands print.
  const progress = new Progress({ operation: 'admin check', mode: !flags.json && process.stderr.isTTY ? 'tty' : 'quiet' });
  progress.start();
  const { scanned, ...result } = await checkArea(dirs, (bytes) => progress.add(1, bytes));
  progress.stop();
  const repaired = flags.repairIndex ? await rebuildIndex(dirs, scanned) : null;
  // After a rebuild only the damage in the packs themselves is left.
  const indexKinds = ['not-indexed', 'index-disagrees', 'missing-pack', 'index-damaged'];
  const remaining = repaired ? result.problems.filter((p) => !indexKinds.includes(p.kind)) : result.problems;
  const data = { user: name, status: remaining.length > 0 ? 'damaged' : 'ok', ...result, repairedIndex: repaired };
  report(flags, data, () => {
    const lines = [
      `Checked ${name}: ${result.packs} pack(s), ${formatBytes(result.bytes)}, ${result.blobs} blob(s); the index lists ${result.indexedPacks} pack(s)${result.indexExists ? '' : ' (there is no index file)'}.`,
      result.encrypted === false ? 'Plaintext repository: every blob was verified against its id.' : '',
      ...(result.problems.length === 0 ? ['No damage found.'] : [`${result.problems.length} problem(s):`]),
      ...result.problems.map((p) => `  ${p.kind}: ${p.message}`),
      repaired ? `Rebuilt the index from the packs: ${repaired.packs} pack(s), ${repaired.blobs} blob(s).` : '',
    ];
    return lines.filter((l) => l !== '').join('\n');
  });
  if (remaining.length > 0) process.exitCode = EXIT_DAMAGED;
}
