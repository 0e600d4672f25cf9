/**
 * The report of the backup benchmark (bench/backup.ts): the figures of one run, the table, the
 * goals, and the load of the machine while it ran.
 */
import { loadavg } from 'node:os';
import type { Dataset, Mutation, Scale, Verification } from './backup-dataset.js';

const MB = 1e6;
const GOAL_TIME_RATIO = 1.0;
const GOAL_BYTES_RATIO = 1.1;

/** One operation by one tool. `bytes`: what the tool says it uploaded/added; `stored`: growth of its packs on disk. */
export interface Op {
  seconds: number;
  bytes: number;
  stored: number;
  peakRssMB: number | null;
  /** CPU seconds of the CLI process (null without GNU time), and for Kura the gateway's during it. */
  cpu: { user: number; sys: number } | null;
  gatewayCpu?: number;
  /** Core-seconds the machine left idle during the operation (null where /proc/stat is missing). */
  idle?: number | null;
}

export interface ToolFigures {
  initial: Op;
  incremental: Op;
  restore: Op;
  restoreCheck: Verification;
}

export interface RunResult {
  dataset: Dataset;
  mutation: Mutation;
  kura: ToolFigures;
  restic: ToolFigures;
  gatewayPeakRssMB: number;
  gatewayPackBytes: number;
  resticPackBytes: number;
  /** Each restore, round by round (Kura first in odd rounds); the restore row holds the fastest. */
  restoreTimes: { kura: Op[]; restic: Op[] };
  /**
   * Memory before each restore: 'evened' (clean page cache dropped, both repositories read back in),
   * 'kept' (--keep-caches: only sync) or 'not-root' (dropping was refused: only sync).
   */
  restoreMemory: 'evened' | 'kept' | 'not-root';
  /** Days 2 and later: another mutation round, then both incrementals (day 1 is the table's). */
  laterDays: DayOfChanges[];
}

/** A day of changes (the generator's mutation round `day`) and each tool's incremental after it. */
export interface DayOfChanges {
  day: number;
  mutation: Mutation;
  kura: Op;
  restic: Op;
}

/** The incrementals of every day together: day 1's changes plus the later days'. */
interface Days {
  days: number;
  changedBytes: number;
  kura: { seconds: number; stored: number };
  restic: { seconds: number; stored: number };
}

const OPERATIONS = ['initial', 'incremental', 'restore'] as const;

interface Row {
  operation: (typeof OPERATIONS)[number];
  kuraSeconds: number;
  resticSeconds: number;
  timeRatio: number;
  kuraBytes: number;
  resticBytes: number;
  kuraStoredBytes: number;
  resticStoredBytes: number;
  kuraAgentPeakRssMB: number | null;
  resticPeakRssMB: number | null;
}

interface Goal {
  goal: string;
  value: number;
  limit: number;
  met: boolean;
}

export interface LoadAverage {
  start: number;
  max: number;
  end: number;
}

/** Samples the 1-minute load average: with 2 cores, a figure well above 2 means other work competed. */
export function watchLoad(): () => LoadAverage {
  const now = () => loadavg()[0] ?? 0;
  const start = now();
  let max = start;
  const timer = setInterval(() => (max = Math.max(max, now())), 5000);
  timer.unref();
  return () => {
    clearInterval(timer);
    const end = now();
    return { start, max: Math.max(max, end), end };
  };
}

export interface Report {
  scale: Scale;
  dataset: { files: number; bytes: number };
  mutation: { changedBytes: number; files: number; bytes: number };
  rows: Row[];
  incrementalBytesRatio: { uploadedVsDataAdded: number; storedVsStored: number };
  goals: Goal[];
  kuraPeakRssMB: { gateway: number; agent: number | null };
  packBytesOnDisk: { kura: number; restic: number };
  restoreVerified: { kura: Verification; restic: Verification };
  restoreTimes: { kura: Op[]; restic: Op[] };
  restoreMemory: RunResult['restoreMemory'];
  laterDays: DayOfChanges[];
  allDays: Days;
  /** Each operation's figures as measured (the restore: each tool's fastest round). */
  ops: { operation: (typeof OPERATIONS)[number]; kura: Op; restic: Op }[];
  /** The machine's 1-minute load average at the start, its highest during the run (every 5 s), and at the end. */
  loadAverage: LoadAverage;
}

function rowOf(operation: Row['operation'], r: RunResult): Row {
  const k = r.kura[operation];
  const s = r.restic[operation];
  return {
    operation,
    kuraSeconds: k.seconds,
    resticSeconds: s.seconds,
    timeRatio: k.seconds / s.seconds,
    kuraBytes: k.bytes,
    resticBytes: s.bytes,
    kuraStoredBytes: k.stored,
    resticStoredBytes: s.stored,
    kuraAgentPeakRssMB: k.peakRssMB,
    resticPeakRssMB: s.peakRssMB,
  };
}

export function buildReport(scale: Scale, r: RunResult, load: LoadAverage): Report {
  const rows = OPERATIONS.map((op) => rowOf(op, r));
  const incr = rows[1]!;
  const storedRatio = incr.kuraStoredBytes / incr.resticStoredBytes;
  const goals: Goal[] = rows.map((row) => ({
    goal: `${row.operation} time Kura/restic ≤ ${GOAL_TIME_RATIO.toFixed(2)}`,
    value: row.timeRatio,
    limit: GOAL_TIME_RATIO,
    met: row.timeRatio <= GOAL_TIME_RATIO,
  }));
  goals.push({
    goal: `incremental bytes stored Kura/restic ≤ ${GOAL_BYTES_RATIO.toFixed(2)}`,
    value: storedRatio,
    limit: GOAL_BYTES_RATIO,
    met: storedRatio <= GOAL_BYTES_RATIO,
  });
  const agentPeaks = rows.map((row) => row.kuraAgentPeakRssMB).filter((v): v is number => v !== null);
  return {
    scale,
    dataset: { files: r.dataset.files, bytes: r.dataset.bytes },
    mutation: { changedBytes: r.mutation.changedBytes, files: r.mutation.files, bytes: r.mutation.bytes },
    rows,
    incrementalBytesRatio: { uploadedVsDataAdded: incr.kuraBytes / incr.resticBytes, storedVsStored: storedRatio },
    goals,
    kuraPeakRssMB: { gateway: r.gatewayPeakRssMB, agent: agentPeaks.length > 0 ? Math.max(...agentPeaks) : null },
    packBytesOnDisk: { kura: r.gatewayPackBytes, restic: r.resticPackBytes },
    restoreVerified: { kura: r.kura.restoreCheck, restic: r.restic.restoreCheck },
    restoreTimes: r.restoreTimes,
    restoreMemory: r.restoreMemory,
    laterDays: r.laterDays,
    allDays: allDays(r),
    ops: OPERATIONS.map((operation) => ({ operation, kura: r.kura[operation], restic: r.restic[operation] })),
    loadAverage: load,
  };
}

function allDays(r: RunResult): Days {
  const sum = (ops: Op[]) => ({ seconds: ops.reduce((n, o) => n + o.seconds, 0), stored: ops.reduce((n, o) => n + o.stored, 0) });
  return {
    days: 1 + r.laterDays.length,
    changedBytes: r.mutation.changedBytes + r.laterDays.reduce((n, d) => n + d.mutation.changedBytes, 0),
    kura: sum([r.kura.incremental, ...r.laterDays.map((d) => d.kura)]),
    restic: sum([r.restic.incremental, ...r.laterDays.map((d) => d.restic)]),
  };
}

/** The later days' lines, and the sum over every day; nothing with a single day. */
function dayLines(r: Report): string[] {
  if (r.laterDays.length === 0) return [];
  const ratio = (k: number, s: number) => (s > 0 ? (k / s).toFixed(2) : 'n/a');
  const line = (label: string, changed: number, k: Pick<Op, 'seconds' | 'stored'>, s: Pick<Op, 'seconds' | 'stored'>) =>
    `  ${label}: ${mb(changed)} MB changed; Kura ${k.seconds.toFixed(1)} s, ${mb(k.stored)} MB stored; ` +
    `restic ${s.seconds.toFixed(1)} s, ${mb(s.stored)} MB stored (K/r time ${ratio(k.seconds, s.seconds)}, stored ${ratio(k.stored, s.stored)})`;
  const a = r.allDays;
  return [
    "Later days (the generator's mutation round N, then both incrementals; day 1 is the table's incremental):",
    ...r.laterDays.map((d) => line(`day ${d.day}`, d.mutation.changedBytes, d.kura, d.restic)),
    line(`all ${a.days} days`, a.changedBytes, a.kura, a.restic),
  ];
}

export const mb = (bytes: number) => (bytes / MB).toFixed(1);
/** "15.3 s (CPU 9.1 user + 4.2 sys, gateway 3.6)" for each op. */
const opList = (list: Op[]) => list.map(opFigures).join(', ');
function opFigures(op: Op): string {
  const cpu = op.cpu ? ` (CPU ${op.cpu.user.toFixed(1)} user + ${op.cpu.sys.toFixed(1)} sys` : ' (';
  const gateway = op.gatewayCpu !== undefined ? `${op.cpu ? ', ' : ''}gateway ${op.gatewayCpu.toFixed(1)}` : '';
  const idle = op.idle !== undefined && op.idle !== null ? `${op.cpu || gateway ? ', ' : ''}cores idle ${op.idle.toFixed(1)}` : '';
  const figures = `${cpu}${gateway}${idle})`;
  return `${op.seconds.toFixed(1)} s${figures === ' ()' ? '' : figures}`;
}
const rss = (v: number | null) => (v === null ? 'n/a' : v.toFixed(1));

function tableLines(r: Report): string[] {
  const widths = [12, 8, 9, 8, 12, 12, 11, 11, 9, 9];
  const row = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' ');
  return [
    row(['operation', 'Kura s', 'restic s', 'K/r', 'Kura MB', 'restic MB', 'Kura st.MB', 'rest. st.MB', 'agent RSS', 'restic RSS']),
    ...r.rows.map((x) =>
      row([
        x.operation,
        x.kuraSeconds.toFixed(1),
        x.resticSeconds.toFixed(1),
        x.timeRatio.toFixed(2),
        mb(x.kuraBytes),
        mb(x.resticBytes),
        x.operation === 'restore' ? '-' : mb(x.kuraStoredBytes),
        x.operation === 'restore' ? '-' : mb(x.resticStoredBytes),
        rss(x.kuraAgentPeakRssMB),
        rss(x.resticPeakRssMB),
      ]),
    ),
  ];
}

const MEMORY: Record<RunResult['restoreMemory'], string> = {
  evened: 'clean page cache dropped, then both repositories and the agents’ caches read back in (after sync)',
  kept: 'as the previous phase left it, after sync (--keep-caches)',
  'not-root': 'as the previous phase left it, after sync (dropping the page cache needs root)',
};

export function printReport(r: Report): void {
  const v = r.restoreVerified;
  const lines = [
    `Backup benchmark, scale ${r.scale}: ${r.dataset.files} files, ${mb(r.dataset.bytes)} MB (MB = 10^6 bytes, seconds = wall clock)`,
    `Mutation: ${mb(r.mutation.changedBytes)} MB changed; afterwards ${r.mutation.files} files, ${mb(r.mutation.bytes)} MB`,
    '',
    ...tableLines(r),
    '',
    'Kura MB: bytesUploaded (backup) or bytes restored; restic MB: data_added (before compression) or bytes restored.',
    'st.MB: growth of the pack files on disk (Kura: the gateway’s /.kura/packs; restic: the repository’s data/).',
    `Incremental bytes Kura/restic: stored ${r.incrementalBytesRatio.storedVsStored.toFixed(2)}, ` +
      `uploaded vs data_added ${r.incrementalBytesRatio.uploadedVsDataAdded.toFixed(2)}`,
    'Wall time and CPU seconds of each operation (user + sys of the CLI process; gateway: its CPU meanwhile; cores idle: core-seconds the machine left unused):',
    ...r.ops.map((o) => `  ${o.operation}: Kura ${opFigures(o.kura)}; restic ${opFigures(o.restic)}`),
    `Restores, round by round (Kura first in odd rounds, restic first in even ones; the table has the fastest): ` +
      `Kura ${opList(r.restoreTimes.kura)}; restic ${opList(r.restoreTimes.restic)}`,
    `Memory before each restore: ${MEMORY[r.restoreMemory]}`,
    ...dayLines(r),
    `Pack bytes on disk at the end: Kura ${mb(r.packBytesOnDisk.kura)} MB, restic ${mb(r.packBytesOnDisk.restic)} MB`,
    `Restores verified: Kura ${v.kura.files} files / ${mb(v.kura.bytes)} MB (${v.kura.sampled} hashed), ` +
      `restic ${v.restic.files} files / ${mb(v.restic.bytes)} MB (${v.restic.sampled} hashed)`,
    `Kura peak RSS: gateway ${rss(r.kuraPeakRssMB.gateway)} MB, agent ${rss(r.kuraPeakRssMB.agent)} MB (largest of the three runs)`,
    `Load average (1 min): ${r.loadAverage.start.toFixed(2)} at the start, ${r.loadAverage.max.toFixed(2)} at most, ` +
      `${r.loadAverage.end.toFixed(2)} at the end`,
    '',
    ...r.goals.map((g) => `${g.met ? 'met    ' : 'NOT met'}  ${g.goal}: ${g.value.toFixed(2)}`),
  ];
  console.log(lines.join('\n'));
}
