import { JOB_STALE_MS, shownState, type JobRecord } from '../format/index.js';
import { formatBytes } from '../agent/progress.js';
import { table } from './output.js';

/** How long a running job may stay silent before it is shown as interrupted (KURA_JOB_STALE_SECONDS overrides). */
export function staleMs(): number {
  const s = Number(process.env.KURA_JOB_STALE_SECONDS);
  return Number.isFinite(s) && s > 0 ? s * 1000 : JOB_STALE_MS;
}

/** The jobs as scripts get them: each record with the state to show (running, or interrupted). */
export function jobsJson(jobs: JobRecord[], now = Date.now()): (JobRecord & { shown: string })[] {
  return jobs.map((j) => ({ ...j, shown: shownState(j, now, staleMs()) }));
}

/** The backup log as a table a person reads, newest last. */
export function jobsTable(jobs: JobRecord[], now = Date.now()): string {
  if (jobs.length === 0) return 'No jobs in the backup log yet.';
  const rows = [['STARTED', 'HOST', 'TYPE', 'RESULT', 'FILES', 'SIZE', 'UPLOADED', 'SNAPSHOT', 'ERROR']];
  for (const j of jobs) {
    rows.push([
      j.startedAt.replace('T', ' ').replace(/\.\d+Z$/, 'Z'),
      j.host,
      j.type,
      shownState(j, now, staleMs()),
      String(j.files),
      formatBytes(j.bytes),
      formatBytes(j.bytesUploaded),
      j.snapshot?.slice(0, 12) ?? '-',
      j.error ?? '',
    ]);
  }
  return table(rows);
}
