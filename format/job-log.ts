import { z } from 'zod';
import { FormatError } from './errors.js';
import { jsonBytes } from './json.js';
import { count, decodeJson, isoTime, validate } from './schema.js';

/**
 * One job of the backup log (README, "The backup log"): what an agent ran, when, and how it ended.
 * The agent PUTs /.kura/log/<id> when a job starts, again every minute while it runs (updatedAt
 * moves on), and once more when it ends; a finished record is never changed. Readers show a running
 * record that stopped moving as interrupted: its agent died without saying so.
 */
export type JobState = 'running' | 'succeeded' | 'failed' | 'cancelled';

export interface JobRecord {
  id: string;
  host: string;
  /** backup types, or 'restore' / 'check' / 'forget' / 'prune' for other jobs. */
  type: string;
  state: JobState;
  startedAt: string;
  updatedAt: string;
  endedAt: string | null;
  files: number;
  bytes: number;
  bytesUploaded: number;
  snapshot: string | null;
  error: string | null;
}

/** The job types that are backups (the others: restore, check, forget, prune). */
export const BACKUP_JOB_TYPES: ReadonlySet<string> = new Set(['incremental', 'differential', 'full', 'copy', 'baseline']);

/** A job id: the start time (sortable) and a random suffix, e.g. 20261126T073300Z-3f9a1c2b. */
export const JOB_ID = /^\d{8}T\d{6}Z-[0-9a-f]{8}$/;

/** After this long without an update, a running job is shown as interrupted. */
export const JOB_STALE_MS = 10 * 60 * 1000;

const JobSchema = z.strictObject({
  kura: z.literal('job'),
  v: z.literal(1),
  id: z.string().regex(JOB_ID),
  host: z.string().min(1).max(255),
  type: z.enum(['incremental', 'differential', 'full', 'copy', 'baseline', 'restore', 'check', 'forget', 'prune']),
  state: z.enum(['running', 'succeeded', 'failed', 'cancelled']),
  startedAt: isoTime,
  updatedAt: isoTime,
  endedAt: isoTime.nullable(),
  files: count,
  bytes: count,
  bytesUploaded: count,
  snapshot: z
    .string()
    .regex(/^[0-9a-f]{64}$/)
    .nullable(),
  error: z.string().max(4000).nullable(),
});

export function encodeJob(job: JobRecord): Buffer {
  const checked = validate(JobSchema, { kura: 'job', v: 1, ...job }, 'bad-record', 'the job record');
  if ((checked.state === 'running') !== (checked.endedAt === null)) {
    throw new FormatError('bad-record', 'the job record: endedAt is set exactly when the job has ended');
  }
  return Buffer.concat([jsonBytes(checked), Buffer.from('\n')]);
}

export function decodeJob(bytes: Uint8Array): JobRecord {
  const decoded = decodeJson(JobSchema, bytes, 'bad-record', 'the job record');
  const job: JobRecord = {
    id: decoded.id,
    host: decoded.host,
    type: decoded.type,
    state: decoded.state,
    startedAt: decoded.startedAt,
    updatedAt: decoded.updatedAt,
    endedAt: decoded.endedAt,
    files: decoded.files,
    bytes: decoded.bytes,
    bytesUploaded: decoded.bytesUploaded,
    snapshot: decoded.snapshot,
    error: decoded.error,
  };
  if ((job.state === 'running') !== (job.endedAt === null)) {
    throw new FormatError('bad-record', 'the job record: endedAt is set exactly when the job has ended');
  }
  return job;
}

/** The state to show: a running job whose record has not moved for JOB_STALE_MS is interrupted. */
export function shownState(job: JobRecord, now: number, staleMs = JOB_STALE_MS): JobState | 'interrupted' {
  return job.state === 'running' && now - Date.parse(job.updatedAt) > staleMs ? 'interrupted' : job.state;
}

/** Whether `next` may replace `stored`: only a running job changes, and never its identity. */
export function mayReplace(stored: JobRecord, next: JobRecord): boolean {
  return (
    stored.state === 'running' &&
    stored.id === next.id &&
    stored.host === next.host &&
    stored.type === next.type &&
    stored.startedAt === next.startedAt
  );
}
