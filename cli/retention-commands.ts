import type { Command } from 'commander';
import { JobLog, readJobLog } from '../agent/job-log.js';
import { formatBytes } from '../agent/progress.js';
import { runPrune, type PruneReport } from '../agent/prune.js';
import type { Repository, SnapshotInfo } from '../agent/repository.js';
import { forgetSnapshots, hasRules, KEEP_RULES, planByHost, type KeepPolicy, type Kept } from '../agent/retention.js';
import { shownState } from '../format/index.js';
import { openRepo, pickSnapshot, withConnection, type CommonFlags } from './agent-commands.js';
import { staleMs } from './job-table.js';

type KeepFlags = { [K in (typeof KEEP_RULES)[number] as `keep${Capitalize<K>}`]?: string };

interface ForgetFlags extends CommonFlags, KeepFlags {
  allHosts?: boolean;
  dryRun?: boolean;
  prune?: boolean;
}

interface PruneFlags extends CommonFlags {
  dryRun?: boolean;
  repackUnused: string;
}

/**
 * `kura forget` and `kura prune`: retention. Both need a certificate with the delete right (an
 * agent's everyday certificate is append-only); the gateway's refusal is printed as it comes.
 */
export function addRetentionCommands(program: Command, run: (fn: () => Promise<void>, json?: boolean) => Promise<void>): void {
  const forget = withConnection(
    program
      .command('forget [snapshots...]')
      .description("forget snapshots: the ones named, or those a --keep-* policy (or the config file's keep) does not keep"),
  );
  for (const rule of KEEP_RULES) {
    forget.option(
      `--keep-${rule} <n>`,
      rule === 'last' ? 'keep the n newest snapshots' : `keep the newest snapshot of each of the last n ${periodName(rule)}`,
    );
  }
  forget
    .option('--all-hosts', "apply the policy to every host's snapshots, not only this PC's")
    .option('--dry-run', 'only show what would be forgotten')
    .option('--prune', 'then remove the data no snapshot uses any more')
    .action((ids: string[], flags: ForgetFlags) => run(() => forgetCommand(ids, flags), flags.json));
  withConnection(program.command('prune').description('remove the data no snapshot uses, and repack mostly unused packs'))
    .option('--dry-run', 'only show what would be removed')
    .option('--repack-unused <percent>', 'repack a pack when at least this share of it is unused', '50')
    .action((flags: PruneFlags) => run(() => pruneCommand(flags), flags.json));
}

function periodName(rule: string): string {
  return { hourly: 'hours', daily: 'days', weekly: 'weeks', monthly: 'months', yearly: 'years' }[rule] ?? rule;
}

function policyOf(flags: KeepFlags, fallback: KeepPolicy): KeepPolicy {
  const policy: KeepPolicy = {};
  for (const rule of KEEP_RULES) {
    const raw = flags[`keep${(rule[0] as string).toUpperCase()}${rule.slice(1)}` as keyof KeepFlags];
    if (raw === undefined) continue;
    if (!/^\d{1,6}$/.test(raw)) throw new Error(`--keep-${rule} must be a whole number, not ${raw}`);
    policy[rule] = Number(raw);
  }
  return hasRules(policy) ? policy : fallback;
}

async function forgetCommand(ids: string[], flags: ForgetFlags): Promise<void> {
  const { repo, config } = await openRepo(flags, () => ({ snapshotsOf: '' }));
  const all = await repo.snapshots();
  const policy = policyOf(flags, config.keep);
  let forget: SnapshotInfo[];
  let keep: Kept[] = [];
  if (ids.length > 0) {
    if (hasRules(policyOf(flags, {}))) throw new Error('name snapshots or give --keep-* rules, not both');
    forget = [...new Map(ids.map((id) => pickSnapshot(all, id)).map((s) => [s.id, s])).values()];
  } else {
    if (!hasRules(policy)) {
      throw new Error(
        'give --keep-last/--keep-hourly/--keep-daily/--keep-weekly/--keep-monthly/--keep-yearly, or snapshot ids, or a "keep" policy in the config file',
      );
    }
    const mine = flags.allHosts ? all : all.filter((s) => s.host === config.host);
    const plans = planByHost(mine, policy);
    forget = [...plans.values()].flatMap((p) => p.forget);
    keep = [...plans.values()].flatMap((p) => p.keep);
  }
  const lines = [
    ...keep.map((k) => ({ action: 'keep', s: k.snapshot, why: k.reasons.join(', ') })),
    ...forget.map((s) => ({ action: flags.dryRun ? 'would forget' : 'forget', s, why: '' })),
  ];
  if (!flags.json && !flags.quiet) {
    for (const l of lines)
      process.stdout.write(`${l.action.padEnd(12)}  ${l.s.id.slice(0, 12)}  ${l.s.time}  ${l.s.host}  ${l.s.type}  ${l.why}\n`);
  }
  if (!flags.dryRun && forget.length > 0) {
    await withJob(repo, config.host, 'forget', () => forgetSnapshots(repo.remote, forget));
  }
  const summary = flags.dryRun
    ? `Would forget ${forget.length} snapshot(s) and keep ${keep.length}; nothing was changed.`
    : forget.length === 0
      ? 'Nothing to forget.'
      : `Forgot ${forget.length} snapshot(s)${keep.length > 0 ? `, kept ${keep.length}` : ''}. Their data stays on the gateway until prune removes what no snapshot uses${flags.prune ? '' : ' (kura prune)'}.`;
  if (flags.json) {
    process.stdout.write(
      JSON.stringify({
        dryRun: Boolean(flags.dryRun),
        keep: keep.map((k) => ({ id: k.snapshot.id, host: k.snapshot.host, time: k.snapshot.time, reasons: k.reasons })),
        forget: forget.map((s) => ({ id: s.id, host: s.host, time: s.time })),
        message: summary,
      }) + '\n',
    );
  } else if (!flags.quiet) process.stdout.write(summary + '\n');
  if (flags.prune && !flags.dryRun) await prune(repo, config.host, { ...flags, repackUnused: '50' });
}

async function pruneCommand(flags: PruneFlags): Promise<void> {
  const { repo, config } = await openRepo(flags);
  await prune(repo, config.host, flags);
}

async function prune(repo: Repository, host: string, flags: PruneFlags): Promise<void> {
  const share = Number(flags.repackUnused);
  if (!/^\d{1,3}$/.test(flags.repackUnused) || share < 1 || share > 100) throw new Error('--repack-unused is a percentage from 1 to 100');
  const now = Date.now();
  const other = (await readJobLog(repo.remote)).find((j) => j.type === 'prune' && shownState(j, now, staleMs()) === 'running');
  if (other && !flags.dryRun)
    throw new Error(`a prune started on ${other.host} at ${other.startedAt} is still running: wait for it to finish`);
  const note = (message: string) => {
    if (flags.json) process.stdout.write(JSON.stringify({ event: 'note', operation: 'prune', message }) + '\n');
    else if (!flags.quiet) process.stderr.write(message + '\n');
  };
  const options = { dryRun: Boolean(flags.dryRun), repackUnused: share / 100, staleMs: staleMs(), onNote: note };
  const report = flags.dryRun ? await runPrune(repo, options) : await withJob(repo, host, 'prune', () => runPrune(repo, options));
  if (flags.json) process.stdout.write(JSON.stringify({ event: 'summary', operation: 'prune', ...report }) + '\n');
  else if (!flags.quiet) process.stdout.write(pruneSummary(report) + '\n');
}

function pruneSummary(r: PruneReport): string {
  const lines = [`${r.snapshots} snapshot(s) use ${r.packs - r.packsRemoved - r.packsRepacked} of ${r.packs} pack(s).`];
  if (r.dryRun) {
    lines.push(
      r.packsRemoved + r.packsRepacked === 0
        ? 'Nothing to remove.'
        : `Would remove ${r.packsRemoved} unused pack(s) and repack ${r.packsRepacked} mostly unused one(s) (${formatBytes(r.bytesRemoved)} stored); nothing was changed.`,
    );
    return lines.join('\n');
  }
  if (r.packsRemoved + r.packsRepacked === 0) lines.push('Nothing to remove.');
  else {
    const repacked = r.packsRepacked > 0 ? ` and repacked ${r.packsRepacked} mostly unused one(s) into ${r.packsWritten} new pack(s)` : '';
    lines.push(
      `Removed ${r.packsRemoved} unused pack(s)${repacked}: freed ${formatBytes(r.bytesRemoved - r.bytesWritten)} on the gateway in ${(r.durationMs / 1000).toFixed(1)} s.`,
    );
  }
  if (r.packsRestored > 0) lines.push(`Kept ${r.packsRestored} pack(s) that a backup made meanwhile uses.`);
  return lines.join('\n');
}

/** Runs fn as a job of the backup log (forget, prune), recording how it ended. */
async function withJob<T>(repo: Repository, host: string, type: 'forget' | 'prune', fn: () => Promise<T>): Promise<T> {
  const log = new JobLog(repo.remote, host, type, () => ({ files: 0, bytes: 0, bytesUploaded: 0 }));
  await log.start();
  try {
    const result = await fn();
    await log.end('succeeded');
    return result;
  } catch (err) {
    await log.end('failed', { error: (err as Error).message });
    throw err;
  }
}
