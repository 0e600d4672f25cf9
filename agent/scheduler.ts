import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import cron, { type ScheduledTask } from 'node-cron';
import { replaceFile } from '../common/replace-file.js';
import type { Schedule } from './config.js';

/** What `kura agent status` reads: the agent's process, its last run and the next ones. */
export interface AgentState {
  pid: number;
  startedAt: string;
  lastRun: { type: string; startedAt: string; endedAt: string; result: string; snapshot: string | null } | null;
  /** Per schedule (cron and type), when it fires next: a time in the past at start-up is a missed run. */
  next: { cron: string; type: string; at: string | null }[];
  skipped: number;
}

/** How one backup is run: the exit code and the committed snapshot (if any). */
export type RunBackup = (type: Schedule['type']) => Promise<{ code: number | null; snapshot: string | null }>;

/** Types by how much they cover, for the catch-up after missed runs: the widest one runs. */
const WIDTH: Record<Schedule['type'], number> = { incremental: 0, differential: 1, copy: 2, full: 3 };

/**
 * `kura agent`: backups on node-cron schedules, one at a time (a run due while another is going is
 * skipped and counted), a run missed while the PC was off or asleep caught up once at start-up, and
 * its state in a file for `kura agent status`.
 */
export class Scheduler {
  private readonly tasks: { schedule: Schedule; task: ScheduledTask }[] = [];
  private running: Promise<void> | null = null;
  /** A backup asked for (run-now) while another ran: it runs next. */
  private pending: Schedule['type'] | null = null;
  private saving: Promise<void> = Promise.resolve();
  private state: AgentState;

  constructor(
    private readonly schedules: Schedule[],
    private readonly run: RunBackup,
    private readonly stateFile: string,
    private readonly say: (line: string) => void,
  ) {
    for (const s of schedules) {
      if (!cron.validate(s.cron)) throw new Error(`the schedule "${s.cron}" is not a valid cron expression`);
    }
    this.state = { pid: process.pid, startedAt: new Date().toISOString(), lastRun: null, next: [], skipped: 0 };
  }

  /** Starts the schedules; runs a missed backup first when the previous agent left one due. */
  async start(): Promise<void> {
    const previous = await readState(this.stateFile);
    this.state.lastRun = previous?.lastRun ?? null;
    for (const schedule of this.schedules) {
      const task = cron.schedule(schedule.cron, () => this.trigger(schedule.type, 'scheduled'), { noOverlap: false });
      this.tasks.push({ schedule, task });
    }
    const now = Date.now();
    const missed = (previous?.next ?? [])
      .filter((n) => n.at !== null && Date.parse(n.at) < now && this.schedules.some((s) => s.cron === n.cron && s.type === n.type))
      .map((n) => n.type as Schedule['type']);
    await this.save();
    if (missed.length > 0) {
      const widest = missed.reduce((a, b) => (WIDTH[b] > WIDTH[a] ? b : a));
      this.say(`A scheduled ${widest} backup was missed while the agent was not running: running it now.`);
      this.trigger(widest, 'missed');
    }
  }

  /**
   * Runs a backup now. While one is running, a scheduled one is skipped (and counted); one asked for
   * runs as soon as the current one ends.
   */
  trigger(type: Schedule['type'], why: 'scheduled' | 'missed' | 'asked'): void {
    if (this.running) {
      if (why === 'asked') {
        this.pending = type;
        this.say(`A ${type} backup will run as soon as the current one ends.`);
        return;
      }
      this.state.skipped++;
      this.say(`Skipped the ${why} ${type} backup: the previous backup is still running.`);
      void this.save();
      return;
    }
    this.running = this.runOne(type, why).finally(() => {
      this.running = null;
      const next = this.pending;
      this.pending = null;
      if (next) this.trigger(next, 'asked');
    });
  }

  async stop(): Promise<void> {
    for (const { task } of this.tasks) await task.destroy();
    await this.running;
    await this.save();
  }

  private async runOne(type: Schedule['type'], why: string): Promise<void> {
    const startedAt = new Date().toISOString();
    this.say(`Starting a ${why} ${type} backup.`);
    let result = 'failed';
    let snapshot: string | null = null;
    try {
      const done = await this.run(type);
      snapshot = done.snapshot;
      result = done.code === 0 ? 'succeeded' : done.code === 3 ? 'incomplete' : done.code === 130 ? 'cancelled' : 'failed';
    } catch (err) {
      this.say(`The ${type} backup could not start: ${(err as Error).message}`);
    }
    this.state.lastRun = { type, startedAt, endedAt: new Date().toISOString(), result, snapshot };
    this.say(`The ${type} backup ${result}${snapshot ? ` (snapshot ${snapshot.slice(0, 12)})` : ''}.`);
    await this.save();
  }

  /** Writes the state file, one write at a time; a write that fails is said, never fatal. */
  private save(): Promise<void> {
    this.saving = this.saving.then(async () => {
      this.state.next = this.tasks.map(({ schedule, task }) => ({
        cron: schedule.cron,
        type: schedule.type,
        at: task.getNextRun()?.toISOString() ?? null,
      }));
      try {
        await replaceFile(this.stateFile, JSON.stringify(this.state, null, 2) + '\n');
      } catch (err) {
        this.say(`Could not write the agent's state (${(err as Error).message}); kura agent status may be out of date.`);
      }
    });
    return this.saving;
  }
}

export async function readState(file: string): Promise<AgentState | null> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as AgentState;
  } catch {
    return null;
  }
}

/** A backup as a child process of the same `kura` command: its own memory, its own exit code. */
export function backupChild(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; snapshot: string | null }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...process.execArgv, process.argv[1]!, 'backup', ...args, '--json'], {
      env,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
    child.on('error', reject);
    child.on('exit', (code) => {
      const summary = out
        .trim()
        .split('\n')
        .map((l) => {
          try {
            return JSON.parse(l) as { event?: string; snapshot?: string };
          } catch {
            return {};
          }
        })
        .find((e) => e.event === 'summary');
      resolve({ code, snapshot: summary?.snapshot ?? null });
    });
  });
}
