import { createHash } from 'node:crypto';
import { readFile, writeFile, mkdir, rm } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { runBackup } from '../agent/backup.js';
import { Cancelled } from '../agent/archiver.js';
import { loadConfig, type AgentConfig, type ConfigFlags } from '../agent/config.js';
import { GatewayRemote } from '../agent/remote.js';
import { ScanThread } from '../agent/scan-thread.js';
import { JobLog, readJobLog } from '../agent/job-log.js';
import { jobsJson, jobsTable } from './job-table.js';
import { putWrappedKey, Repository, type OpenOptions, type SnapshotInfo } from '../agent/repository.js';
import { restorePaths, runRestore } from '../agent/restore.js';
import { forgetSnapshots, hasRules, planForget } from '../agent/retention.js';
import { encodeKeyFile, type SnapshotType } from '../format/index.js';
import { AgentReporter } from './agent-report.js';

export interface CommonFlags extends ConfigFlags {
  quiet?: boolean;
  json?: boolean;
}

export function withConnection(cmd: Command): Command {
  return cmd
    .option('--config <file>', 'agent config file (JSON); also KURA_CONFIG')
    .option('--gateway <url>', 'gateway URL; also KURA_GATEWAY')
    .option('--cert <file>', 'client certificate (PEM); also KURA_CERT')
    .option('--key <file>', 'client certificate key (PEM); also KURA_KEY')
    .option('--ca <file>', "CA of the gateway's certificate; also KURA_CA")
    .option('--host <name>', 'host name recorded in snapshots; also KURA_HOST')
    .option('--key-file <file>', 'encryption key file instead of a passphrase; also KURA_KEY_FILE')
    .option('--quiet', 'print nothing but errors')
    .option('--json', 'print JSON for scripts');
}

export async function connect(
  flags: CommonFlags,
  loaded?: AgentConfig,
): Promise<{ config: AgentConfig; remote: GatewayRemote; identity: string }> {
  const config = loaded ?? (await loadConfig(flags));
  const [certPem, keyPem, caPem] = await Promise.all([
    readFile(config.cert, 'utf8'),
    readFile(config.key, 'utf8'),
    config.ca ? readFile(config.ca, 'utf8') : undefined,
  ]);
  const identity = createHash('sha256').update(config.gateway).update(certPem).digest('hex').slice(0, 16);
  return { config, remote: new GatewayRemote({ url: config.gateway, certPem, keyPem, caPem }), identity };
}

/**
 * Connects and opens the repository, with this PC's index cache; `prefetch` names what the command
 * needs at once, fetched while the key is derived.
 */
export async function openRepo(
  flags: CommonFlags,
  prefetch?: (config: AgentConfig) => OpenOptions['prefetch'],
  loaded?: AgentConfig,
  beforeIndex?: (remote: GatewayRemote) => Promise<unknown>,
) {
  const { config, remote, identity } = await connect(flags, loaded);
  const repo = await Repository.open(
    remote,
    { passphrase: config.passphrase, keyFile: config.keyFile },
    { indexCache: join(stateDir(), `index-${identity}.json`), prefetch: prefetch?.(config), indexAfter: beforeIndex?.(remote) },
  );
  return { config, identity, repo };
}

export function addAgentCommands(program: Command, run: (fn: () => Promise<void>, json?: boolean) => Promise<void>): void {
  addKeyCommands(program, run);
  withConnection(program.command('backup [folders...]').description("back up folders (or the config file's folders) to the gateway"))
    .option('--type <type>', 'incremental (default), differential, full or copy', 'incremental')
    .option('--exclude <glob...>', 'leave out matching paths')
    .option('--cancel', 'stop the backup running for this host, cleanly')
    .action((folders: string[], flags: CommonFlags & { type: string; cancel?: boolean }) => run(() => backup(folders, flags), flags.json));
  const baseline = program
    .command('baseline')
    .description('a known image of this PC (e.g. its factory install) whose files are never uploaded');
  withConnection(
    baseline
      .command('mark [folders...]')
      .description('record the folders as they are now as the baseline: files are hashed, not uploaded; later backups send only changes'),
  ).action((folders: string[], flags: CommonFlags) => run(() => lockedBackup(folders, 'baseline', flags), flags.json));
  withConnection(
    program.command('restore <snapshot> [paths...]').description('restore a snapshot (latest, an id prefix or a time) into --target'),
  )
    .requiredOption('--target <dir>', 'folder to restore into')
    .action((snapshot: string, paths: string[], flags: CommonFlags & { target: string }) =>
      run(() => restore(snapshot, paths, flags), flags.json),
    );
  withConnection(program.command('snapshots').description('list the snapshots on the gateway')).action((flags: CommonFlags) =>
    run(() => listSnapshots(flags), flags.json),
  );
  withConnection(program.command('log').description('show the backup log: every job, its result, files and bytes')).action(
    (flags: CommonFlags) => run(() => showLog(flags), flags.json),
  );
  withConnection(program.command('diff <snapshot1> <snapshot2>').description('list what changed between two snapshots')).action(
    (a: string, b: string, flags: CommonFlags) => run(() => diff(a, b, flags), flags.json),
  );
  withConnection(program.command('ls <snapshot> [path]').description('list the files of a snapshot')).action(
    (snapshot: string, path: string | undefined, flags: CommonFlags) => run(() => ls(snapshot, path, flags), flags.json),
  );
}

function addKeyCommands(program: Command, run: (fn: () => Promise<void>, json?: boolean) => Promise<void>): void {
  const key = program.command('key').description('the encryption key of your backups');
  withConnection(key.command('init').description('create the backup repository (encrypted unless --plaintext)'))
    .option('--plaintext', 'store backups unencrypted so the gateway can show them (explicit opt-out)')
    .action((flags: CommonFlags & { plaintext?: boolean }) =>
      run(async () => {
        const { config, remote } = await connect(flags);
        const keyFile = config.keyFile;
        await Repository.init(remote, {
          plaintext: flags.plaintext,
          passphrase: config.passphrase,
          writeKeyFile: keyFile ? (bytes) => writeFile(keyFile, bytes, { mode: 0o600, flag: 'wx' }) : undefined,
        });
        say(
          flags,
          flags.plaintext
            ? 'Created an unencrypted backup repository.'
            : `Created an encrypted backup repository${keyFile ? `; the key is in ${keyFile}: keep a copy somewhere safe` : ' (key wrapped under your passphrase on the gateway)'}.`,
        );
      }, flags.json),
    );
  withConnection(key.command('change-passphrase').description('add a new passphrase (from KURA_NEW_PASSPHRASE) for the same key')).action(
    (flags: CommonFlags) =>
      run(async () => {
        const next = process.env.KURA_NEW_PASSPHRASE;
        if (!next) throw new Error('set KURA_NEW_PASSPHRASE to the new passphrase');
        const { repo } = await openRepo(flags);
        if (!repo.keys) throw new Error('this repository is not encrypted');
        await putWrappedKey(repo.remote, repo.keys, next);
        say(flags, 'The new passphrase opens the repository now.');
      }, flags.json),
  );
  withConnection(key.command('export').description('write the key to a file (for KURA_KEY_FILE)'))
    .requiredOption('--out <file>', 'where to write the key file')
    .action((flags: CommonFlags & { out: string }) =>
      run(async () => {
        const { repo } = await openRepo(flags);
        if (!repo.keys) throw new Error('this repository is not encrypted: there is no key to export');
        await writeFile(flags.out, encodeKeyFile(repo.keys), { mode: 0o600, flag: 'wx' });
        say(flags, `Wrote the key to ${flags.out}. Anyone with this file can read your backups: keep it safe.`);
      }, flags.json),
    );
}

function say(flags: CommonFlags, text: string): void {
  if (flags.json) process.stdout.write(JSON.stringify({ message: text }) + '\n');
  else if (!flags.quiet) process.stdout.write(text + '\n');
}

export function stateDir(): string {
  return process.env.KURA_STATE_DIR ?? join(homedir(), '.cache', 'kura');
}

function pidFile(host: string): string {
  return join(stateDir(), `backup-${host}.pid`);
}

const SNAPSHOT_TYPES: readonly SnapshotType[] = ['incremental', 'differential', 'full', 'copy'];

function isSnapshotType(type: string): type is SnapshotType {
  return (SNAPSHOT_TYPES as readonly string[]).includes(type);
}

async function backup(folders: string[], flags: CommonFlags & { type: string; cancel?: boolean }): Promise<void> {
  if (flags.cancel) return cancelRunning((await loadConfig(flags)).host, flags);
  const type = flags.type;
  if (!isSnapshotType(type)) throw new Error(`--type must be incremental, differential, full or copy, not ${type}`);
  await lockedBackup(folders, type, flags);
}

/** A backup of the given type (baseline included) under this PC's one-backup-per-host lock. */
async function lockedBackup(folders: string[], type: SnapshotType, flags: CommonFlags): Promise<void> {
  const config = await loadConfig(flags);
  const targets = (folders.length > 0 ? folders : config.folders).map((f) => resolve(f));
  if (targets.length === 0) throw new Error('name the folders to back up, or list them in the config file');
  const pid = pidFile(config.host);
  await mkdir(join(pid, '..'), { recursive: true });
  // One backup of a host at a time on this PC (the agent's scheduled runs included).
  const other = await runningBackup(config.host);
  if (other !== null && other !== process.pid) {
    throw new Error(`a backup of ${config.host} is already running (process ${other}): wait for it, or stop it with kura backup --cancel`);
  }
  // Ctrl-C, SIGTERM and `kura backup --cancel` (which finds this process by the pid file) stop the
  // backup cleanly from the moment the pid file exists.
  const stop: Stop = { requested: false, note: () => undefined };
  const onSignal = () => {
    stop.requested = true;
    stop.note('Stopping after the uploads in progress…');
  };
  process.on('SIGINT', onSignal).on('SIGTERM', onSignal);
  try {
    await writeFile(pid, String(process.pid), { flag: 'wx' }).catch((err: unknown) => {
      throw (err as NodeJS.ErrnoException).code === 'EEXIST'
        ? new Error(`a backup of ${config.host} has just started in another process: wait for it, or stop it with kura backup --cancel`)
        : err;
    });
    try {
      await backupLocked(targets, type, config, flags, stop);
    } finally {
      await rm(pid, { force: true });
    }
  } finally {
    process.off('SIGINT', onSignal).off('SIGTERM', onSignal);
  }
}

/** A request to stop (a signal), and how to tell the user it was heard. */
interface Stop {
  requested: boolean;
  note: (message: string) => void;
}

/** The backup itself, once this PC's lock for the host is held. */
async function backupLocked(targets: string[], type: SnapshotType, config: AgentConfig, flags: CommonFlags, stop: Stop): Promise<void> {
  // The walk starts now, on its own thread, while the repository is opened (runBackup closes it).
  const scanner = new ScanThread(targets, { exclude: config.exclude, listings: true });
  const compares = type === 'incremental' || type === 'differential';
  const reporter = new AgentReporter(flags, 'backup');
  stop.note = (message) => reporter.note(message);
  const counts = { files: 0, bytes: 0, bytesUploaded: 0 };
  const job: { log?: JobLog } = {};
  // The job is recorded before the index is read (see Repository.open's indexAfter).
  const startLog = (remote: GatewayRemote) => {
    job.log = new JobLog(
      remote,
      config.host,
      type,
      () => counts,
      (message) => reporter.note(message),
    );
    return job.log.start();
  };
  const opened = await openRepo(flags, (c) => ({ index: true, snapshotsOf: compares ? c.host : undefined }), config, startLog).catch(
    async (err: unknown) => {
      await scanner.close();
      await job.log?.end('failed', { error: (err as Error).message });
      throw err;
    },
  );
  const { repo, identity } = opened;
  const log = job.log!;
  let skipped = 0;
  try {
    const result = await runBackup(repo, {
      folders: targets,
      host: config.host,
      type,
      exclude: config.exclude,
      scanner,
      treeCache: join(stateDir(), `trees-${identity}.bin`),
      folderCache: join(stateDir(), `folders-${identity}.json`),
      isCancelled: () => stop.requested,
      // The parent's totals are a good estimate for the ETA; only a first backup counts the files.
      onStart: (parent) =>
        parent
          ? reporter.progress.setTotals(parent.files, parent.bytes)
          : void countFiles(targets, config.exclude).then(
              ({ files, bytes }) => reporter.progress.setTotals(files, bytes),
              () => undefined,
            ),
      onFile: (t, bytes) => {
        counts.files = t.files;
        counts.bytes = t.bytes;
        reporter.progress.add(1, bytes);
      },
      onUploaded: (bytes) => (counts.bytesUploaded += bytes),
      onWarning: (path, err) => {
        skipped++;
        reporter.note(`skipped ${path}: ${(err as Error).message}`);
      },
      onSnapshotLimit: config.keepWithinPlan ? () => makeRoom(repo, config, (m) => reporter.note(m)) : undefined,
    });
    if (type === 'baseline') {
      reporter.note(
        `Marked ${result.totals.files} files as the baseline of ${config.host}: their data was hashed, not uploaded. Later backups upload only what changes since; a restore leaves these files to the baseline image, so keep it (e.g. the recovery partition).`,
      );
    }
    if (type === 'differential' && result.type === 'full') {
      reporter.note(
        `${config.host} had no full backup to differ from: this backup was made as a full one, the base for the next differentials.`,
      );
    }
    Object.assign(counts, { files: result.totals.files, bytes: result.totals.bytes, bytesUploaded: result.totals.bytesUploaded });
    await log.end('succeeded', { snapshot: result.snapshotId, error: skipped > 0 ? `${skipped} path(s) could not be read` : null });
    reporter.backupSummary(result);
    if (skipped > 0) {
      // As restic does: the snapshot is committed, but a script must know it is incomplete.
      reporter.note(`${skipped} path(s) could not be read and are not in this snapshot (listed above); exit code 3.`);
      process.exitCode = 3;
    }
  } catch (err) {
    if (err instanceof Cancelled) {
      await log.end('cancelled');
      reporter.note('Backup cancelled. The parts already uploaded are kept: run the backup again to resume.');
      process.exitCode = 130;
      return;
    }
    await log.end('failed', { error: (err as Error).message });
    throw err;
  }
}

/**
 * keepWithinPlan: the contract's snapshot limit is reached, so forget what the config's keep policy
 * does not keep among this host's snapshots, or else its oldest one. Needs the delete right.
 */
async function makeRoom(repo: Repository, config: AgentConfig, note: (message: string) => void): Promise<boolean> {
  const mine = await repo.snapshots(config.host);
  const byPolicy = hasRules(config.keep) ? planForget(mine, config.keep).forget : [];
  const forget = byPolicy.length > 0 ? byPolicy : mine.slice(0, 1);
  if (forget.length === 0) return false;
  await forgetSnapshots(repo.remote, forget).catch((err: unknown) => {
    throw new Error(`the snapshot limit is reached and keepWithinPlan could not forget old snapshots: ${(err as Error).message}`);
  });
  note(
    `The contract's snapshot limit was reached: forgot ${forget.length} old snapshot(s) of ${config.host} ${byPolicy.length > 0 ? 'that the keep policy does not keep' : '(the oldest)'} to make room (keepWithinPlan). kura prune frees their space.`,
  );
  return true;
}

/** The process of the backup of host that is running now, or null (a stale pid file is removed). */
async function runningBackup(host: string): Promise<number | null> {
  const pid = Number((await readFile(pidFile(host), 'utf8').catch(() => '')).trim());
  if (!(await isKuraRunning(pid, 'backup'))) {
    await rm(pidFile(host), { force: true });
    return null;
  }
  return pid;
}

/**
 * Whether pid is a live `kura <command>` process. A pid file left by a killed run may name a process
 * that reused the number, so the command line must match too (where /proc can tell).
 */
export async function isKuraRunning(pid: number, command: string): Promise<boolean> {
  if (!(pid > 0)) return false;
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => null);
  return cmdline === null || new RegExp(`kura[\\s\\S]*\\b${command}\\b`).test(cmdline.replace(/\0/g, ' '));
}

async function cancelRunning(host: string, flags: CommonFlags): Promise<void> {
  const pid = await runningBackup(host);
  if (!pid) return say(flags, `No backup is running for ${host}.`);
  try {
    process.kill(pid, 'SIGINT');
    say(flags, `Asked the backup of ${host} (process ${pid}) to stop; it keeps what it has uploaded.`);
  } catch {
    await rm(pidFile(host), { force: true });
    say(flags, `No backup is running for ${host}.`);
  }
}

/** Counts the files and bytes to back up, for the ETA; runs beside the backup itself. */
async function countFiles(folders: string[], exclude: string[]): Promise<{ files: number; bytes: number }> {
  const { scan } = await import('../agent/scan.js');
  let files = 0;
  let bytes = 0;
  for (const folder of folders) {
    for await (const e of scan(folder, { exclude })) {
      if (e.type !== 'file') continue;
      files++;
      bytes += e.size;
    }
  }
  return { files, bytes };
}

/** Picks a snapshot: "latest", an id prefix, or a time (the last snapshot at or before it). */
export function pickSnapshot(all: SnapshotInfo[], spec: string, host?: string): SnapshotInfo {
  const list = host ? all.filter((s) => s.host === host) : all;
  if (spec === 'latest') {
    const last = list[list.length - 1];
    if (!last) throw new Error('there are no snapshots yet');
    return last;
  }
  const byId = list.filter((s) => s.id.startsWith(spec.toLowerCase()));
  if (byId.length === 1) return byId[0]!;
  if (byId.length > 1) throw new Error(`${spec} matches ${byId.length} snapshots: give more of the id`);
  const at = Date.parse(spec);
  const before = Number.isNaN(at) ? [] : list.filter((s) => Date.parse(s.time) <= at);
  const found = before[before.length - 1];
  if (!found) throw new Error(`no snapshot matches ${spec} (use latest, an id prefix or a time)`);
  return found;
}

async function restore(spec: string, paths: string[], flags: CommonFlags & { target: string }): Promise<void> {
  const { repo, identity } = await openRepo(flags, () => ({ index: true, snapshotsOf: '' }));
  const snapshot = pickSnapshot(await repo.snapshots(), spec);
  const reporter = new AgentReporter(flags, 'restore');
  const counts = await runRestore(repo, snapshot, {
    target: resolve(flags.target),
    paths,
    treeCache: join(stateDir(), `trees-${identity}.bin`),
    onPlan: (files, bytes) => {
      reporter.progress.setTotals(files, bytes);
      reporter.progress.restartRate();
    },
    onFile: () => reporter.progress.add(1, 0),
    onBytes: (b) => reporter.progress.add(0, b),
  });
  reporter.restoreSummary(snapshot, counts, flags.target, restorePaths(paths).length > 0);
  if (counts.failed.length > 0) process.exitCode = 3;
}

async function showLog(flags: CommonFlags): Promise<void> {
  const { remote } = await connect(flags);
  const jobs = await readJobLog(remote);
  if (flags.json) process.stdout.write(JSON.stringify(jobsJson(jobs), null, 2) + '\n');
  else process.stdout.write(jobsTable(jobs) + '\n');
}

async function listSnapshots(flags: CommonFlags): Promise<void> {
  const { repo } = await openRepo(flags);
  const all = await repo.snapshots();
  if (flags.json) {
    process.stdout.write(
      JSON.stringify(
        all.map((s) => ({ id: s.id, host: s.host, time: s.time, type: s.type, encrypted: s.encrypted, ...repo.body(s) })),
        null,
        2,
      ) + '\n',
    );
    return;
  }
  if (all.length === 0) return say(flags, 'No snapshots yet.');
  for (const s of all) {
    const body = repo.body(s);
    process.stdout.write(`${s.id.slice(0, 12)}  ${s.time}  ${s.host}  ${s.type}  ${body.totals.files} files  ${body.paths.join(', ')}\n`);
  }
}

async function ls(spec: string, path: string | undefined, flags: CommonFlags): Promise<void> {
  const { repo } = await openRepo(flags);
  const snapshot = pickSnapshot(await repo.snapshots(), spec);
  const trees = await treesOf(repo);
  let tree: string | null = repo.body(snapshot).tree;
  for (const part of (path ?? '').split('/').filter(Boolean)) {
    const entry: { subtree?: string } | undefined = (await trees.entries(tree)).get(part);
    if (!entry?.subtree) throw new Error(`${path} is not a folder in this snapshot`);
    tree = entry.subtree;
  }
  const entries = [...(await trees.entries(tree)).values()];
  if (flags.json) process.stdout.write(JSON.stringify(entries, null, 2) + '\n');
  else
    for (const e of entries)
      process.stdout.write(
        `${e.type === 'dir' ? 'd' : e.type === 'symlink' ? 'l' : '-'} ${String(e.size).padStart(12)}  ${e.name}${e.type === 'dir' ? '/' : ''}\n`,
      );
}

async function diff(a: string, b: string, flags: CommonFlags): Promise<void> {
  const { repo } = await openRepo(flags);
  const all = await repo.snapshots();
  const [left, right] = [pickSnapshot(all, a), pickSnapshot(all, b)];
  const { diffTrees } = await import('../agent/diff.js');
  const trees = await treesOf(repo);
  const lines = await diffTrees(trees, repo.body(left).tree, repo.body(right).tree);
  if (flags.json) return void process.stdout.write(JSON.stringify(lines, null, 2) + '\n');
  const mark = { added: '+', removed: '-', changed: 'M' } as const;
  for (const l of lines) process.stdout.write(`${mark[l.change]} ${l.path}${l.type === 'dir' ? '/' : ''}\n`);
  const count = (c: string) => lines.filter((l) => l.change === c).length;
  say(
    flags,
    `${count('added')} added, ${count('removed')} removed, ${count('changed')} changed between ${left.id.slice(0, 12)} and ${right.id.slice(0, 12)}`,
  );
}

/** The snapshot trees of the repository, read through its blob index. */
async function treesOf(repo: Repository) {
  const { BlobReader, TreeLoader } = await import('../agent/trees.js');
  return new TreeLoader(new BlobReader(repo.remote, await repo.index(), repo.codec));
}
