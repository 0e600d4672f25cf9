/**
 * Progress of a backup or restore in the terminal: files and bytes done against the totals known so
 * far, a smoothed rate and an ETA. One state, four ways to show it:
 *   tty    one line redrawn in place (\r) at most 4 times a second;
 *   plain  a line every 5 seconds, for logs and pipes;
 *   json   NDJSON events ({"event":"progress",...} each second, then "summary") for scripts;
 *   quiet  nothing at all.
 *
 * Written here rather than with cli-progress: that library draws a bar on a TTY and little else, it
 * has no NDJSON output, keeps its own clock and timers (so ETA tests would have to sleep), and its
 * ETA averages the last few updates rather than time. This file is the small part we need, with the
 * output stream and the clock injected.
 *
 * Sizes and rates use SI units (1 MB = 10^6 bytes), like the benchmarks.
 */

export type ProgressMode = 'tty' | 'plain' | 'json' | 'quiet';

/** Where lines go: process.stderr, or anything with write() in tests. */
export interface ProgressOutput {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export interface ProgressOptions {
  /** What is running, shown first on each line and in events: 'backup', 'restore'. */
  operation: string;
  /** Default: process.stderr. */
  out?: ProgressOutput;
  /** Default: chooseMode({ isTTY: out.isTTY }). */
  mode?: ProgressMode;
  /** Milliseconds from any fixed origin; default performance.now. */
  now?: () => number;
}

/** What the progress shows at one moment. */
export interface ProgressState {
  elapsedMs: number;
  filesDone: number;
  filesTotal: number | undefined;
  bytesDone: number;
  bytesTotal: number | undefined;
  /** Smoothed; 0 until the first sample. */
  bytesPerSecond: number;
  /** undefined while the total or the rate is unknown. */
  etaSeconds: number | undefined;
}

/** One line of the final summary: `label` for people, `key` and the raw `value` for JSON. */
export interface SummaryField {
  key: string;
  label: string;
  value: number | string;
  /** The value in JSON when it differs from what a person reads (e.g. null for "none"). */
  json?: number | string | null;
  /** How to show a number: a count (1,234, the default), bytes (1.23 GB) or seconds (1:05). */
  unit?: 'count' | 'bytes' | 'seconds';
}

/** How often each mode redraws, in ms. */
const INTERVAL_MS: Record<ProgressMode, number> = { tty: 250, plain: 5000, json: 1000, quiet: Infinity };
/** The rate is re-sampled at most this often, and smoothed over about RATE_TAU_MS. */
const SAMPLE_MS = 250;
const RATE_TAU_MS = 3000;

/** The mode for the CLI flags: --quiet wins over --json, which wins over the terminal's kind. */
export function chooseMode(flags: { quiet?: boolean; json?: boolean; isTTY?: boolean }): ProgressMode {
  if (flags.quiet) return 'quiet';
  if (flags.json) return 'json';
  return flags.isTTY ? 'tty' : 'plain';
}

export class Progress {
  readonly mode: ProgressMode;
  private readonly out: ProgressOutput;
  private readonly now: () => number;
  private readonly operation: string;
  private readonly startedAt: number;
  private filesDone = 0;
  private bytesDone = 0;
  private filesTotal: number | undefined;
  private bytesTotal: number | undefined;
  private rate = 0;
  /** True until the rate's first sample since the clock started (creation, or restartRate). */
  private unrated = true;
  /** When the rate's clock started, and the bytes counted then: the final line shows the average since. */
  private clock: { at: number; bytes: number };
  private sampledAt: number;
  private sampledBytes = 0;
  private drawnAt: number;
  private lineShown = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(opts: ProgressOptions) {
    this.out = opts.out ?? process.stderr;
    this.mode = opts.mode ?? chooseMode({ isTTY: this.out.isTTY === true });
    this.now = opts.now ?? (() => performance.now());
    this.operation = opts.operation;
    this.startedAt = this.now();
    this.sampledAt = this.startedAt;
    this.clock = { at: this.startedAt, bytes: 0 };
    // A terminal shows the line at once; logs and scripts get their first line after one interval.
    this.drawnAt = this.mode === 'tty' ? -Infinity : this.startedAt;
  }

  /** Sets the totals known so far (a scan running ahead of the work may raise them). */
  setTotals(files: number | undefined, bytes: number | undefined): void {
    this.filesTotal = files;
    this.bytesTotal = bytes;
    this.tick();
  }

  /**
   * Starts the rate's clock now, for work that begins after a pause the rate should not include (a
   * restore's planning): without it, a restore of a second ends showing a fraction of its real rate.
   */
  restartRate(): void {
    this.sampledAt = this.now();
    this.sampledBytes = this.bytesDone;
    this.clock = { at: this.sampledAt, bytes: this.bytesDone };
    this.rate = 0;
    this.unrated = true;
  }

  /** Counts finished work: whole files and/or bytes. */
  add(files: number, bytes: number): void {
    this.filesDone += files;
    this.bytesDone += bytes;
    this.tick();
  }

  /** Samples the rate and redraws when the mode's interval has passed; start() calls it on a timer. */
  tick(): void {
    const t = this.now();
    this.sample(t);
    if (t - this.drawnAt < INTERVAL_MS[this.mode]) return;
    this.drawnAt = t;
    this.draw();
  }

  /** Redraws on a timer as well, so a long file does not freeze the line. */
  start(): void {
    if (this.mode === 'quiet' || this.timer) return;
    this.timer = setInterval(() => this.tick(), Math.min(INTERVAL_MS[this.mode], 1000));
    this.timer.unref();
  }

  /** Stops the timer and shows the final state (ending the TTY line), with the average rate of the work. */
  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    if (this.mode === 'quiet') return;
    const t = this.now();
    if (t > this.clock.at) this.rate = ((this.bytesDone - this.clock.bytes) * 1000) / (t - this.clock.at);
    this.draw();
    if (this.mode === 'tty') this.out.write('\n');
    this.lineShown = false;
  }

  /** Prints a message (a skipped file, say) without garbling the TTY line; JSON gets a "note" event. */
  note(message: string): void {
    if (this.mode === 'quiet') return;
    if (this.mode === 'json') return void this.out.write(JSON.stringify({ event: 'note', operation: this.operation, message }) + '\n');
    this.out.write((this.lineShown ? '\r\x1b[K' : '') + message + '\n');
    this.lineShown = false;
    this.drawnAt = -Infinity;
  }

  /** Prints the final block (or a "summary" event); `title` defaults to "<operation> finished in m:ss". */
  summary(fields: SummaryField[], title?: string): void {
    const elapsedMs = this.now() - this.startedAt;
    if (this.mode === 'quiet') return;
    if (this.lineShown) this.out.write('\n');
    this.lineShown = false;
    if (this.mode === 'json') {
      const values = Object.fromEntries(fields.map((f) => [f.key, f.json !== undefined ? f.json : f.value]));
      return void this.out.write(
        JSON.stringify({ event: 'summary', operation: this.operation, elapsedMs: Math.round(elapsedMs), ...values }) + '\n',
      );
    }
    this.out.write(formatSummary(title ?? `${this.operation} finished in ${formatDuration(elapsedMs / 1000)}`, fields));
  }

  state(): ProgressState {
    const { filesDone, filesTotal, bytesDone, bytesTotal, rate } = this;
    const left = bytesTotal === undefined ? undefined : Math.max(0, bytesTotal - bytesDone);
    const etaSeconds = left === undefined ? undefined : left === 0 ? 0 : rate > 0 ? left / rate : undefined;
    return { elapsedMs: this.now() - this.startedAt, filesDone, filesTotal, bytesDone, bytesTotal, bytesPerSecond: rate, etaSeconds };
  }

  /** Exponential smoothing in time, so the rate does not depend on how often add() is called. */
  private sample(t: number): void {
    const dt = t - this.sampledAt;
    if (dt < SAMPLE_MS) return;
    const instant = ((this.bytesDone - this.sampledBytes) * 1000) / dt;
    const first = this.unrated;
    this.unrated = false;
    this.rate = first ? instant : this.rate + (1 - Math.exp(-dt / RATE_TAU_MS)) * (instant - this.rate);
    this.sampledAt = t;
    this.sampledBytes = this.bytesDone;
  }

  private draw(): void {
    const s = this.state();
    if (this.mode === 'quiet') return;
    if (this.mode === 'json') return void this.out.write(JSON.stringify(progressEvent(this.operation, s)) + '\n');
    const line = `${this.operation}  ${formatProgressLine(s)}`;
    if (this.mode === 'plain') return void this.out.write(`[${formatDuration(s.elapsedMs / 1000)}] ${line}\n`);
    const width = Math.max(20, (this.out.columns ?? 80) - 1);
    this.out.write('\r' + line.slice(0, width) + '\x1b[K');
    this.lineShown = true;
  }
}

function progressEvent(operation: string, s: ProgressState): Record<string, unknown> {
  return {
    event: 'progress',
    operation,
    elapsedMs: Math.round(s.elapsedMs),
    filesDone: s.filesDone,
    filesTotal: s.filesTotal ?? null,
    bytesDone: s.bytesDone,
    bytesTotal: s.bytesTotal ?? null,
    bytesPerSecond: Math.round(s.bytesPerSecond),
    etaSeconds: s.etaSeconds === undefined ? null : Math.round(s.etaSeconds),
  };
}

/** "120/1,500 files  1.23 GB / 4.56 GB  27%  85.3 MB/s  ETA 0:42"; parts without a total are left out. */
export function formatProgressLine(s: ProgressState): string {
  const files = s.filesTotal === undefined ? formatCount(s.filesDone) : `${formatCount(s.filesDone)}/${formatCount(s.filesTotal)}`;
  const parts = [`${files} files`];
  if (s.bytesTotal === undefined) parts.push(formatBytes(s.bytesDone));
  else {
    parts.push(`${formatBytes(s.bytesDone)} / ${formatBytes(s.bytesTotal)}`);
    parts.push(`${s.bytesTotal > 0 ? Math.floor((100 * Math.min(s.bytesDone, s.bytesTotal)) / s.bytesTotal) : 100}%`);
  }
  parts.push(formatRate(s.bytesPerSecond));
  if (s.bytesTotal !== undefined) parts.push(`ETA ${s.etaSeconds === undefined ? '--:--' : formatDuration(s.etaSeconds)}`);
  return parts.join('  ');
}

function formatSummary(title: string, fields: SummaryField[]): string {
  const width = Math.max(0, ...fields.map((f) => f.label.length));
  const lines = fields.map((f) => `  ${f.label.padEnd(width)}  ${formatValue(f)}`);
  return [title, ...lines].join('\n') + '\n';
}

function formatValue(f: SummaryField): string {
  if (typeof f.value === 'string') return f.value;
  if (f.unit === 'bytes') return formatBytes(f.value);
  if (f.unit === 'seconds') return formatDuration(f.value);
  return formatCount(f.value);
}

const SI_UNITS = ['B', 'kB', 'MB', 'GB', 'TB', 'PB'];

/** 999 B, 1.00 kB, 12.3 MB, 456 GB: three significant digits from 1 kB up. */
export function formatBytes(bytes: number): string {
  let value = Math.max(0, bytes);
  let unit = 0;
  while (value >= 999.5 && unit < SI_UNITS.length - 1) {
    value /= 1000;
    unit++;
  }
  if (unit === 0) return `${Math.round(value)} B`;
  const digits = value >= 99.95 ? 0 : value >= 9.995 ? 1 : 2;
  return `${value.toFixed(digits)} ${SI_UNITS[unit]}`;
}

export function formatRate(bytesPerSecond: number): string {
  return `${formatBytes(bytesPerSecond)}/s`;
}

/** m:ss under an hour, h:mm:ss after. */
export function formatDuration(seconds: number): string {
  const total = Math.max(0, Math.round(seconds));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = String(total % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${s}` : `${m}:${s}`;
}

/** 1,234,567 whatever the machine's locale, so logs read the same everywhere. */
export function formatCount(n: number): string {
  return Math.round(n)
    .toString()
    .replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}
