import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { decodeJob, decodeSnapshotEnvelope, JOB_ID, type JobRecord, type SnapshotTotals, type SnapshotType } from '../../format/index.js';
import { areaLayout, type DataLayout } from '../storage/data-dir.js';
import type { UserRecord } from './records.js';

/** A snapshot as the gateway can show it: the envelope always, the body's figures only when plaintext. */
export interface SnapshotSummary {
  id: string;
  host: string;
  time: string;
  type: SnapshotType;
  encrypted: boolean;
  paths: string[] | null;
  totals: SnapshotTotals | null;
}

const SNAPSHOT_ID = /^[0-9a-f]{64}$/;

/**
 * Every job of a user's backup log (the records the agent PUT under /.kura/log/), oldest first.
 * A damaged record is left out rather than hiding the others.
 */
export async function readJobs(layout: DataLayout, user: UserRecord): Promise<JobRecord[]> {
  const dir = join(areaLayout(layout, user.id).kura, 'log');
  const names = (await readdir(dir).catch(() => [] as string[])).filter((n) => JOB_ID.test(n)).sort();
  const jobs: JobRecord[] = [];
  for (const n of names) {
    try {
      jobs.push(decodeJob(await readFile(join(dir, n))));
    } catch {
      // left out: see above
    }
  }
  return jobs.sort((a, b) => a.startedAt.localeCompare(b.startedAt) || a.id.localeCompare(b.id));
}

/** Every snapshot record of a user (/.kura/snapshots/<host>/<id>), oldest first; damaged ones left out. */
export async function readSnapshots(layout: DataLayout, user: UserRecord): Promise<SnapshotSummary[]> {
  const dir = join(areaLayout(layout, user.id).kura, 'snapshots');
  const out: SnapshotSummary[] = [];
  for (const host of await readdir(dir).catch(() => [] as string[])) {
    for (const id of (await readdir(join(dir, host)).catch(() => [] as string[])).filter((n) => SNAPSHOT_ID.test(n))) {
      try {
        const e = decodeSnapshotEnvelope(await readFile(join(dir, host, id)));
        const body = typeof e.body === 'string' ? null : e.body;
        out.push({
          id,
          host: e.host,
          time: e.time,
          type: e.type,
          encrypted: e.encrypted,
          paths: body?.paths ?? null,
          totals: body?.totals ?? null,
        });
      } catch {
        // a damaged record is left out
      }
    }
  }
  return out.sort((a, b) => a.time.localeCompare(b.time) || a.id.localeCompare(b.id));
}
