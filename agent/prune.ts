import { BACKUP_JOB_TYPES, decodeTree, PackBuilder, blobTypeFromCode, shownState, type JobRecord } from '../format/index.js';
import { readJobLog } from './job-log.js';
import { RemoteError, type Remote } from './remote.js';
import type { BlobLocation, Repository, SnapshotInfo } from './repository.js';
import { BlobReader, mergeRuns, packPath } from './trees.js';

export interface PruneOptions {
  /** Only report what would be removed and repacked. */
  dryRun: boolean;
  /** A pack with at least this share of unused bytes is repacked (its used blobs copied into new packs). */
  repackUnused: number;
  /** How long a running job may stay silent before it counts as interrupted (see format/job-log.ts). */
  staleMs: number;
  /** How often to look again at the backups that were running when packs went to the trash. */
  pollMs?: number;
  /** Plain-words notes for the user: what prune is waiting for, what it could not do. */
  onNote?: (message: string) => void;
}

export interface PruneReport {
  dryRun: boolean;
  snapshots: number;
  packs: number;
  /** Packs no snapshot uses, removed whole. */
  packsRemoved: number;
  /** Packs mostly unused, whose used blobs were copied into new packs before they were removed. */
  packsRepacked: number;
  packsWritten: number;
  /** Packs put back because a backup that ran meanwhile used them. */
  packsRestored: number;
  /** Packs left in the trash by an interrupted prune and put back before this one looked. */
  trashRecovered: number;
  /** Stored bytes removed, and written into new packs. */
  bytesRemoved: number;
  bytesWritten: number;
  /** Backups that were running when packs went to the trash, waited for. */
  waitedFor: number;
  durationMs: number;
}

const REPACK_TARGET = 32 << 20;

/**
 * Removes what no snapshot uses, safely while other backups run (DESIGN.md: an upload in flight never
 * loses a blob it counted on):
 * 1. packs an interrupted prune left in the trash go back first, so they are judged again;
 * 2. every tree of every snapshot is read: the blobs they reach are used, all others unused;
 * 3. mostly unused packs have their used blobs copied (verified, still sealed) into new packs;
 * 4. unused and repacked packs are moved to the trash: the gateway takes them out of the index, so a
 *    backup that starts now uploads their blobs again if it needs them;
 * 5. prune waits for the backups that were running then (one of them may count on those blobs),
 *    reads the snapshots they committed and puts back every trashed pack one of them uses;
 * 6. the rest is deleted from the trash, which frees its space on the gateway.
 */
export async function runPrune(repo: Repository, opts: PruneOptions): Promise<PruneReport> {
  const started = performance.now();
  const remote = repo.remote;
  const note = opts.onNote ?? (() => undefined);
  if (!opts.dryRun) await requireDeleteRight(remote);
  const trashRecovered = await recoverTrash(remote);
  if (trashRecovered > 0) note(`Put back ${trashRecovered} pack(s) an interrupted prune had left in the trash.`);
  const snapshots = await repo.snapshots();
  const entries = await repo.indexEntries();
  const byPack = groupByPack(entries);
  note(`Reading the folders of ${snapshots.length} snapshot(s) to find what they use among ${byPack.size} pack(s)…`);
  const used = await usedBlobs(repo, snapshots, new BlobReader(remote, locations(entries), repo.codec));
  const plan = planPacks(byPack, used, opts.repackUnused);
  const report: PruneReport = {
    dryRun: opts.dryRun,
    snapshots: snapshots.length,
    packs: byPack.size,
    packsRemoved: plan.remove.length,
    packsRepacked: plan.repack.length,
    packsWritten: 0,
    packsRestored: 0,
    trashRecovered,
    bytesRemoved: [...plan.remove, ...plan.repack].reduce((n, p) => n + packBytes(byPack.get(p)!), 0),
    bytesWritten: 0,
    waitedFor: 0,
    durationMs: 0,
  };
  if (!opts.dryRun && plan.remove.length + plan.repack.length > 0) {
    if (plan.repack.length > 0) note(`Copying the used blobs of ${plan.repack.length} mostly unused pack(s) into new packs…`);
    const written = await repack(repo, plan.repack, byPack, used, note);
    report.packsWritten = written.packs;
    report.bytesWritten = written.bytes;
    const repacked = written.done ? plan.repack : [];
    const condemned = [...plan.remove, ...repacked];
    note(`Moving ${condemned.length} pack(s) out of the index into the trash…`);
    for (const pack of condemned) await remote.move(packPath(pack), trashPath(pack));
    // A backup that read the index before these packs left it may count on their blobs (its job
    // record is written before it reads the index): wait for it, then put back every pack that the
    // snapshots committed meanwhile use.
    report.waitedFor = await waitForJobs(remote, await runningBackups(remote, opts.staleMs), opts, note);
    const known = new Set(snapshots.map((s) => s.id));
    const fresh = (await repo.snapshots()).filter((s) => !known.has(s.id));
    const restore = await packsUsedBy(repo, fresh, condemned, byPack, entries);
    for (const pack of restore) await remote.move(trashPath(pack), packPath(pack));
    const gone = condemned.filter((p) => !restore.has(p));
    const sizes = await sizesInTrash(remote, gone);
    for (const pack of gone) await remote.remove(trashPath(pack));
    report.packsRestored = restore.size;
    report.packsRemoved = plan.remove.filter((p) => !restore.has(p)).length;
    report.packsRepacked = repacked.filter((p) => !restore.has(p)).length;
    report.bytesRemoved = gone.reduce((n, p) => n + (sizes.get(p) ?? packBytes(byPack.get(p)!)), 0);
  }
  report.durationMs = Math.round(performance.now() - started);
  return report;
}

/**
 * Fails at once, with the gateway's reason, when this credential is append-only: a MOVE of a pack
 * that cannot exist is refused for the right before the gateway looks for the pack (404 means allowed).
 */
async function requireDeleteRight(remote: Remote): Promise<void> {
  const none = '0'.repeat(64);
  try {
    await remote.move(packPath(none), trashPath(none));
  } catch (err) {
    if (err instanceof RemoteError && err.status === 404) return;
    throw err;
  }
}

export function trashPath(id: string): string {
  return `/.kura/trash/${id.slice(0, 2)}/${id}`;
}

/** The sizes of the pack files in the trash (what deleting them frees), one PROPFIND per prefix. */
async function sizesInTrash(remote: Remote, packs: readonly string[]): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const prefix of new Set(packs.map((p) => p.slice(0, 2)))) {
    for (const [name, size] of await remote.sizes(`/.kura/trash/${prefix}/`)) out.set(name, size);
  }
  return out;
}

/** Moves every pack left in the trash back into packs/ (the gateway indexes each again); returns how many. */
async function recoverTrash(remote: Remote): Promise<number> {
  let count = 0;
  for (const prefix of await remote.list('/.kura/trash/')) {
    if (!/^[0-9a-f]{2}$/.test(prefix)) continue;
    for (const id of await remote.list(`/.kura/trash/${prefix}/`)) {
      if (!/^[0-9a-f]{64}$/.test(id)) continue;
      await remote.move(trashPath(id), packPath(id));
      count++;
    }
  }
  return count;
}

function groupByPack(entries: readonly BlobLocation[]): Map<string, BlobLocation[]> {
  const byPack = new Map<string, BlobLocation[]>();
  for (const e of entries) {
    let list = byPack.get(e.pack);
    if (!list) byPack.set(e.pack, (list = []));
    list.push(e);
  }
  return byPack;
}

function locations(entries: readonly BlobLocation[]): Map<string, BlobLocation> {
  return new Map(entries.map((e) => [e.id, e]));
}

function packBytes(blobs: readonly BlobLocation[]): number {
  return blobs.reduce((n, b) => n + b.length, 0);
}

/** Every blob (trees and data) that the snapshots reach, read level by level in bulk. */
async function usedBlobs(repo: Repository, snapshots: readonly SnapshotInfo[], blobs: BlobReader): Promise<Set<string>> {
  const used = new Set<string>();
  let level = snapshots.map((s) => repo.body(s).tree);
  while (level.length > 0) {
    const fresh = [...new Set(level.filter((id) => !used.has(id)))];
    for (const id of fresh) used.add(id);
    const next: string[] = [];
    for (const [, bytes] of await blobs.readMany(fresh)) {
      for (const e of decodeTree(bytes)) {
        if (e.type === 'dir' && e.subtree) next.push(e.subtree);
        for (const id of e.content ?? []) used.add(id);
      }
    }
    level = next;
  }
  return used;
}

/** Packs without a used blob are removed; packs with at least `repackUnused` of their bytes unused are repacked. */
export function planPacks(
  byPack: ReadonlyMap<string, readonly BlobLocation[]>,
  used: ReadonlySet<string>,
  repackUnused: number,
): { remove: string[]; repack: string[] } {
  const remove: string[] = [];
  const repack: string[] = [];
  for (const [pack, blobs] of byPack) {
    const total = packBytes(blobs);
    const unused = packBytes(blobs.filter((b) => !used.has(b.id)));
    if (unused === total) remove.push(pack);
    else if (unused > 0 && unused >= total * repackUnused) repack.push(pack);
  }
  return { remove, repack };
}

/**
 * Copies the used blobs of the packs to repack into new packs, as stored (still sealed), each one
 * decoded first so a damaged blob is never copied. A blob that a kept pack holds too is not copied.
 * Returns what was written; on a refusal (a full quota) done is false: the packs stay as they are.
 */
async function repack(
  repo: Repository,
  packs: readonly string[],
  byPack: ReadonlyMap<string, readonly BlobLocation[]>,
  used: ReadonlySet<string>,
  note: (message: string) => void,
): Promise<{ done: boolean; packs: number; bytes: number }> {
  if (packs.length === 0) return { done: true, packs: 0, bytes: 0 };
  const leaving = new Set(packs);
  const elsewhere = new Set<string>();
  for (const [pack, blobs] of byPack) if (!leaving.has(pack)) for (const b of blobs) elsewhere.add(b.id);
  let builder = new PackBuilder();
  const written = { done: true, packs: 0, bytes: 0 };
  const flush = async () => {
    if (builder.count === 0) return;
    const { id, bytes } = builder.finish();
    await repo.remote.putFile(packPath(id), bytes);
    written.packs++;
    written.bytes += bytes.length;
    builder = new PackBuilder();
  };
  try {
    const copied = new Set<string>();
    for (const pack of packs) {
      const keep = byPack.get(pack)!.filter((b) => used.has(b.id) && !elsewhere.has(b.id) && !copied.has(b.id));
      for (const run of mergeRuns(keep.map((loc) => ({ loc })))) {
        const start = run[0]!.loc.offset;
        const last = run[run.length - 1]!.loc;
        const bytes = await repo.remote.getFile(packPath(pack), { start, end: last.offset + last.length - 1 });
        if (!bytes) throw new Error(`pack ${pack.slice(0, 12)} is missing on the gateway`);
        for (const { loc } of run) {
          const stored = bytes.subarray(loc.offset - start, loc.offset - start + loc.length);
          repo.codec.decode(stored, loc.id);
          if (!builder.canAdd(stored.length) || builder.size >= REPACK_TARGET) await flush();
          builder.add(loc.id, blobTypeFromCode(loc.type), Buffer.from(stored), loc.plainLength);
          copied.add(loc.id);
        }
      }
    }
    await flush();
  } catch (err) {
    if (!/quota|507/i.test((err as Error).message)) throw err;
    note(`Could not repack (${(err as Error).message}); only packs nothing uses are removed this time.`);
    return { ...written, done: false };
  }
  return written;
}

/** The backups the log shows running now (a record that stopped moving counts as interrupted). */
async function runningBackups(remote: Remote, staleMs: number): Promise<JobRecord[]> {
  const now = Date.now();
  return (await readJobLog(remote)).filter((j) => BACKUP_JOB_TYPES.has(j.type) && shownState(j, now, staleMs) === 'running');
}

/** Waits until each of the jobs has ended or gone silent; returns how many there were. */
async function waitForJobs(remote: Remote, jobs: readonly JobRecord[], opts: PruneOptions, note: (m: string) => void): Promise<number> {
  const ids = new Set(jobs.map((j) => j.id));
  if (ids.size === 0) return 0;
  const hosts = [...new Set(jobs.map((j) => j.host))].join(', ');
  note(`Waiting for the backup(s) running on ${hosts} to finish before deleting: they may use what is being removed.`);
  for (;;) {
    const now = Date.now();
    const still = (await readJobLog(remote)).filter((j) => ids.has(j.id) && shownState(j, now, opts.staleMs) === 'running');
    if (still.length === 0) return ids.size;
    await new Promise((r) => setTimeout(r, opts.pollMs ?? 2000));
  }
}

/**
 * The condemned packs holding blobs that the given snapshots use and that no indexed pack (a new one
 * from the repack, say) holds. Their trees may themselves sit in the trash
 * (a backup that ran meanwhile reused a tree it found there), so blobs are read from the trash too.
 */
async function packsUsedBy(
  repo: Repository,
  snapshots: readonly SnapshotInfo[],
  condemned: readonly string[],
  byPack: ReadonlyMap<string, readonly BlobLocation[]>,
  before: readonly BlobLocation[],
): Promise<Set<string>> {
  if (snapshots.length === 0 || condemned.length === 0) return new Set();
  const trashed = new Set(condemned);
  const now = await repo.indexEntries();
  const indexed = new Set(now.map((e) => e.id));
  const where = locations([...before.filter((e) => trashed.has(e.pack)), ...now]);
  const inTrash = (path: string) => {
    const id = path.slice(path.lastIndexOf('/') + 1);
    return trashed.has(id) ? trashPath(id) : path;
  };
  const remote: Remote = {
    getFile: (path, range) => repo.remote.getFile(inTrash(path), range),
    putFile: (path, bytes) => repo.remote.putFile(path, bytes),
    list: (path) => repo.remote.list(path),
    sizes: (path) => repo.remote.sizes(path),
    getIndex: (since, epoch) => repo.remote.getIndex(since, epoch),
    remove: (path) => repo.remote.remove(path),
    move: (from, to) => repo.remote.move(from, to),
  };
  const used = await usedBlobs(repo, snapshots, new BlobReader(remote, where, repo.codec));
  const out = new Set<string>();
  for (const pack of condemned) if (byPack.get(pack)!.some((b) => used.has(b.id) && !indexed.has(b.id))) out.add(pack);
  return out;
}
