import { randomBytes } from 'node:crypto';
import { decodeJob, encodeJob, JOB_ID, type JobRecord, type JobState } from '../format/index.js';
import type { Remote } from './remote.js';

/** What a job has done so far, for its record. */
export interface JobCounts {
  files: number;
  bytes: number;
  bytesUploaded: number;
}

/**
 * This agent's entry in the backup log on the gateway (format/job-log.ts): written when the job
 * starts, every minute while it runs, and when it ends. Writing the log never fails the job: a record
 * that cannot be written is reported once through onTrouble and the job goes on.
 */
export class JobLog {
  private record: JobRecord;
  private timer: NodeJS.Timeout | null = null;
  private writing: Promise<void> = Promise.resolve();
  private troubled = false;

  constructor(
    private readonly remote: Remote,
    host: string,
    type: string,
    private readonly counts: () => JobCounts,
    private readonly onTrouble: (message: string) => void = () => undefined,
    private readonly everyMs = 60_000,
  ) {
    const now = new Date();
    const stamp = now
      .toISOString()
      .replace(/[-:]/g, '')
      .replace(/\.\d+Z$/, 'Z');
    this.record = {
      id: `${stamp}-${randomBytes(4).toString('hex')}`,
      host,
      type,
      state: 'running',
      startedAt: now.toISOString(),
      updatedAt: now.toISOString(),
      endedAt: null,
      files: 0,
      bytes: 0,
      bytesUploaded: 0,
      snapshot: null,
      error: null,
    };
  }

  get id(): string {
    return this.record.id;
  }

  /** Records the start, then keeps the record moving until end(). */
  async start(): Promise<void> {
    await this.write();
    this.timer = setInterval(() => void this.write(), this.everyMs);
    this.timer.unref();
  }

  async end(state: Exclude<JobState, 'running'>, outcome: { snapshot?: string | null; error?: string | null } = {}): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    const now = new Date().toISOString();
    this.record = { ...this.record, state, endedAt: now, snapshot: outcome.snapshot ?? null, error: outcome.error?.slice(0, 4000) ?? null };
    await this.write();
  }

  private write(): Promise<void> {
    this.writing = this.writing.then(async () => {
      this.record = { ...this.record, ...this.counts(), updatedAt: new Date().toISOString() };
      try {
        await this.remote.putFile(`/.kura/log/${this.record.id}`, encodeJob(this.record));
      } catch (err) {
        if (!this.troubled) this.onTrouble(`could not write the backup log on the gateway: ${(err as Error).message}`);
        this.troubled = true;
      }
    });
    return this.writing;
  }
}

/** Every job record of the user's log, oldest first (records that do not decode are skipped). */
export async function readJobLog(remote: Remote): Promise<JobRecord[]> {
  const names = (await remote.list('/.kura/log/')).filter((n) => JOB_ID.test(n));
  const jobs: JobRecord[] = [];
  for (let i = 0; i < names.length; i += 8) {
    const batch = await Promise.all(names.slice(i, i + 8).map((n) => remote.getFile(`/.kura/log/${n}`)));
    for (const bytes of batch) {
      if (!bytes) continue;
      try {
        jobs.push(decodeJob(bytes));
      } catch {
        // A damaged record is left out rather than hiding the others.
      }
    }
  }
  return jobs.sort(byStart);
}

/** Oldest first, by start time to the millisecond (ids carry only the second). */
export function byStart(a: JobRecord, b: JobRecord): number {
  return a.startedAt.localeCompare(b.startedAt) || a.id.localeCompare(b.id);
}
