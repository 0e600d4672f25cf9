/**
 * Child processes for the benchmarks (bench/backup.ts, bench/dav-throughput.ts): a command timed by
 * wall clock with its peak RSS, and a long-running server whose peak RSS is watched until it is stopped.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const MB = 1e6;
const GNU_TIME = '/usr/bin/time';

export interface TimedRun {
  seconds: number;
  stdout: string;
  /** The process's own peak resident memory in MB (10^6 bytes); null when it could not be read. */
  peakRssMB: number | null;
  /** User and kernel CPU seconds of the process (GNU time); null without /usr/bin/time. */
  cpu: { user: number; sys: number } | null;
  /** Core-seconds the whole machine left idle meanwhile (/proc/stat); null where that cannot be read. */
  idle: number | null;
}

/**
 * Idle (and I/O-wait) core-seconds of the whole machine since boot, from the first line of
 * /proc/stat; null where there is none. The difference over a run says how much of the cores' time
 * nothing used: a tool that leaves cores idle has room for the kernel's own work, one that keeps them
 * busy pays for it in wall time.
 */
export async function idleCoreSeconds(): Promise<number | null> {
  const line = (await readFile('/proc/stat', 'utf8').catch(() => '')).split('\n')[0] ?? '';
  const fields = line.trim().split(/\s+/);
  if (fields[0] !== 'cpu' || fields.length < 6) return null;
  return (Number(fields[4]) + Number(fields[5])) / CLOCK_TICKS;
}

/** User plus kernel CPU seconds a running process has used so far (/proc/PID/stat), 0 when unreadable. */
export async function cpuSecondsOf(pid: number | undefined): Promise<number> {
  const stat = pid === undefined ? '' : await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  // Fields 14 and 15 (utime, stime) in clock ticks, counted after the ')' that ends the command name.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11] ?? 0) + Number(fields[12] ?? 0)) / CLOCK_TICKS;
}

/** USER_HZ: 100 on every Linux the benchmarks run on. */
const CLOCK_TICKS = 100;

export function secondsSince(started: bigint): number {
  return Number(process.hrtime.bigint() - started) / 1e9;
}

async function readKib(pid: number, field: 'VmRSS' | 'VmHWM'): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  return Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0);
}

/** Polls VmRSS every 100 ms; at the end, VmHWM (the kernel's own peak) counts too. */
export class RssSampler {
  private peakKib = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly pid: number) {
    this.timer = setInterval(() => void this.sample('VmRSS'), 100);
    this.timer.unref();
  }

  /** Stops polling and returns the peak in MB; call while the process still runs. */
  async finish(): Promise<number> {
    clearInterval(this.timer);
    await this.sample('VmHWM');
    return (this.peakKib * 1024) / MB;
  }

  /** The peak seen so far, in MB. */
  get peakMB(): number {
    return (this.peakKib * 1024) / MB;
  }

  async sample(field: 'VmRSS' | 'VmHWM' = 'VmHWM'): Promise<void> {
    this.peakKib = Math.max(this.peakKib, await readKib(this.pid, field));
  }
}

/**
 * Runs `cmd` to its end and times it from spawn to exit. The peak RSS comes from GNU time's %M when
 * /usr/bin/time exists (it reports the child's getrusage maximum), otherwise from polling VmHWM.
 * Rejects with the tail of both outputs when the command fails.
 */
export async function runTimed(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<TimedRun> {
  const rssFile = join(tmpdir(), `kura-bench-rss-${process.pid}-${Math.random().toString(36).slice(2)}`);
  const useTime = existsSync(GNU_TIME);
  const [file, argv] = useTime ? [GNU_TIME, ['-f', '%M %U %S', '-o', rssFile, cmd, ...args]] : [cmd, args];
  const idleBefore = await idleCoreSeconds();
  const started = process.hrtime.bigint();
  const child = spawn(file, argv, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const poller = useTime || child.pid === undefined ? null : new RssSampler(child.pid);
  const { code, stdout, stderr } = await collect(child, poller);
  const seconds = secondsSince(started);
  const idleAfter = await idleCoreSeconds();
  const idle = idleBefore === null || idleAfter === null ? null : idleAfter - idleBefore;
  const timed = useTime ? await readTimeFile(rssFile) : null;
  await rm(rssFile, { force: true });
  if (code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited with ${code}\n${stdout.slice(-2000)}\n${stderr.slice(-4000)}`);
  return { seconds, stdout, peakRssMB: timed ? timed.peakRssMB : (poller?.peakMB ?? null), cpu: timed?.cpu ?? null, idle };
}

function collect(child: ChildProcess, poller: RssSampler | null): Promise<{ code: number | null; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
  // The last VmHWM readable before the process is reaped is its peak (polled often enough to catch it).
  const fast = poller ? setInterval(() => void poller.sample('VmHWM'), 50) : null;
  return new Promise((resolvePromise, reject) => {
    child.once('error', reject);
    child.once('close', (code) => {
      if (fast) clearInterval(fast);
      resolvePromise({ code, stdout, stderr });
    });
  });
}

/** GNU time's last line: peak RSS in KiB, user and system seconds. */
async function readTimeFile(path: string): Promise<{ peakRssMB: number | null; cpu: TimedRun['cpu'] }> {
  const text = await readFile(path, 'utf8').catch(() => '');
  const [kib = NaN, user = NaN, sys = NaN] = (text.trim().split('\n').pop() ?? '').split(' ').map(Number);
  return {
    peakRssMB: Number.isFinite(kib) && kib > 0 ? (kib * 1024) / MB : null,
    cpu: Number.isFinite(user) && Number.isFinite(sys) ? { user, sys } : null,
  };
}

export interface Server {
  child: ChildProcess;
  url: string;
  rss: RssSampler;
}

/**
 * Starts a server and resolves with the first URL that `pattern` finds in its output. Both output
 * streams are read to the end so a chatty child never blocks on a full pipe.
 */
export function startServer(cmd: string, args: string[], pattern: RegExp, env: NodeJS.ProcessEnv = process.env): Promise<Server> {
  const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.resume();
  child.stderr.resume();
  return new Promise((resolvePromise, reject) => {
    let output = '';
    const timer = setTimeout(() => fail(new Error(`${cmd} did not start within 120 s`)), 120_000);
    const onData = (data: Buffer) => {
      output += data.toString('utf8');
      const url = pattern.exec(output)?.[1];
      if (url === undefined || child.pid === undefined) return;
      settle();
      resolvePromise({ child, url, rss: new RssSampler(child.pid) });
    };
    const onExit = (code: number | null) => fail(new Error(`${cmd} exited with ${code} before listening`));
    const settle = () => {
      clearTimeout(timer);
      child.stdout.off('data', onData);
      child.stderr.off('data', onData);
      child.off('exit', onExit).off('error', fail);
    };
    function fail(err: Error): void {
      settle();
      child.kill('SIGKILL');
      reject(new Error(`${err.message}\n${output.slice(-4000)}`));
    }
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('error', fail).once('exit', onExit);
  });
}

/** SIGTERM, then SIGKILL after 15 s (a --cpu-prof child needs a moment to write its profile). */
export async function stopServer(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((done) => child.once('exit', () => done()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  await exited;
  clearTimeout(timer);
}

/** Node flags given on the command line (e.g. "--cpu-prof --cpu-prof-dir=DIR"), split into arguments. */
export function nodeFlags(text: string | undefined): string[] {
  return text?.split(/\s+/).filter((a) => a !== '') ?? [];
}
