import { decodeTree, FormatError, type TreeEntry } from '../format/index.js';
import { RemoteError, type Remote } from './remote.js';
import type { BlobLocation, Repository, SnapshotInfo } from './repository.js';
import { mergeRuns, packPath } from './trees.js';

export interface CheckOptions {
  /** Download every data blob and verify it (AEAD and id), not only the trees. */
  readData: boolean;
  /** Called once the data blobs to read are known (with readData). */
  onPlan?: (blobs: number, bytes: number) => void;
  /** Called as data blobs are verified (with readData): how many, and their stored bytes. */
  onProgress?: (blobs: number, bytes: number) => void;
}

/** One blob that cannot be used, and why, in plain words. */
export interface BlobDamage {
  id: string;
  type: 'tree' | 'data';
  /** The pack the index places it in; null when the index does not know the blob. */
  pack: string | null;
  reason: string;
}

/** A snapshot some of whose files or folders cannot be restored; paths are inside the snapshot. */
export interface AffectedSnapshot {
  id: string;
  host: string;
  time: string;
  /** Files that use a damaged or missing blob, and folders (ending in '/') whose listing is lost. */
  paths: string[];
}

export interface CheckReport {
  readData: boolean;
  snapshots: number;
  trees: number;
  dataBlobs: number;
  /** Blobs downloaded and verified, and their stored bytes. */
  blobsRead: number;
  bytesRead: number;
  damaged: BlobDamage[];
  /** Packs holding damaged blobs, with those blobs' ids. */
  packs: { pack: string; blobs: string[] }[];
  /** Snapshot records whose body cannot be read (wrong key or altered record). */
  unreadableSnapshots: { id: string; host: string; reason: string }[];
  affected: AffectedSnapshot[];
}

/** The pieces one check works with, so its steps stay small. */
interface State {
  remote: Remote;
  codec: { decodeVerified(stored: Buffer, id: string, plainLength?: number): Buffer };
  index: Map<string, BlobLocation>;
  packsOnGateway: Set<string>;
  trees: Map<string, TreeEntry[]>;
  bad: Map<string, BlobDamage>;
  report: CheckReport;
  opts: CheckOptions;
}

/** Stored bytes per ranged GET (neighbouring blobs merged, as restore does), and GETs in flight. */
const RUN_MAX = 8 << 20;
const LANES = 4;
const TRUNCATED = 'its pack is shorter than the index says (truncated)';

/**
 * Checks the repository with its key: every snapshot record opens, every tree of every snapshot is
 * reachable and decodes, every data blob the trees name is in the index and in a pack the gateway
 * has; with readData every data blob is downloaded and verified too. Damage never stops the check:
 * it is collected and traced back to the files of each snapshot that it affects. Throws only when
 * the gateway cannot be asked (RemoteError) or the repository cannot be opened.
 */
export async function runCheck(repo: Repository, opts: CheckOptions): Promise<CheckReport> {
  const [index, snapshots, packsOnGateway] = await Promise.all([repo.index(), repo.snapshots(), listPacks(repo.remote)]);
  const report: CheckReport = {
    readData: opts.readData,
    snapshots: snapshots.length,
    trees: 0,
    dataBlobs: 0,
    blobsRead: 0,
    bytesRead: 0,
    damaged: [],
    packs: [],
    unreadableSnapshots: [],
    affected: [],
  };
  const state: State = { remote: repo.remote, codec: repo.codec, index, packsOnGateway, trees: new Map(), bad: new Map(), report, opts };
  const roots = rootsOf(repo, snapshots, report);
  await loadTrees(state, [...new Set(roots.map((r) => r.tree))]);
  report.trees = state.trees.size;
  await checkData(state);
  report.damaged = [...state.bad.values()].sort((a, b) => (a.pack ?? '').localeCompare(b.pack ?? '') || a.id.localeCompare(b.id));
  report.packs = packsOf(report.damaged);
  report.affected = roots
    .map(({ snapshot, tree }) => ({ id: snapshot.id, host: snapshot.host, time: snapshot.time, paths: affectedPaths(state, tree) }))
    .filter((a) => a.paths.length > 0);
  return report;
}

/** Whether the report shows any damage (exit code 3). */
export function isDamaged(report: CheckReport): boolean {
  return report.damaged.length > 0 || report.unreadableSnapshots.length > 0;
}

/** The pack ids the gateway holds (PROPFIND of /.kura/packs/ and its prefix folders). */
async function listPacks(remote: Remote): Promise<Set<string>> {
  const prefixes = (await remote.list('/.kura/packs/')).filter((p) => /^[0-9a-f]{2}$/.test(p));
  const out = new Set<string>();
  await inParallel(prefixes, LANES, async (prefix) => {
    for (const name of await remote.list(`/.kura/packs/${prefix}/`)) if (/^[0-9a-f]{64}$/.test(name)) out.add(name);
  });
  return out;
}

function rootsOf(repo: Repository, snapshots: SnapshotInfo[], report: CheckReport): { snapshot: SnapshotInfo; tree: string }[] {
  const roots: { snapshot: SnapshotInfo; tree: string }[] = [];
  for (const snapshot of snapshots) {
    try {
      roots.push({ snapshot, tree: repo.body(snapshot).tree });
    } catch (err) {
      report.unreadableSnapshots.push({ id: snapshot.id, host: snapshot.host, reason: (err as Error).message });
    }
  }
  return roots;
}

/** Loads every tree reachable from roots, level by level, in bulk; failures go to state.bad. */
async function loadTrees(state: State, roots: string[]): Promise<void> {
  let level = roots;
  while (level.length > 0) {
    const next: string[] = [];
    await readBlobs(state, level, 'tree', (id, plain) => {
      try {
        const entries = decodeTree(plain);
        state.trees.set(id, entries);
        for (const e of entries) if (e.type === 'dir' && e.subtree) next.push(e.subtree);
      } catch (err) {
        state.bad.set(id, { id, type: 'tree', pack: state.index.get(id)?.pack ?? null, reason: (err as Error).message });
      }
    });
    level = [...new Set(next)].filter((id) => !state.trees.has(id) && !state.bad.has(id));
  }
}

/** Every data blob the trees name: located (always) and downloaded and verified (readData). */
async function checkData(state: State): Promise<void> {
  const ids = new Set<string>();
  // A baseline file's blobs were never uploaded (format/README.md, Trees): nothing to find.
  for (const entries of state.trees.values()) for (const e of entries) if (!e.baseline) for (const id of e.content ?? []) ids.add(id);
  state.report.dataBlobs = ids.size;
  const located = [...ids].filter((id) => locate(state, id, 'data'));
  if (!state.opts.readData) return;
  state.opts.onPlan?.(
    located.length,
    located.reduce((n, id) => n + state.index.get(id)!.length, 0),
  );
  await readBlobs(state, located, 'data', () => undefined);
}

/** The blob's location when the index has it and its pack is on the gateway; else records why not. */
function locate(state: State, id: string, type: BlobDamage['type']): BlobLocation | null {
  const loc = state.index.get(id);
  if (!loc) state.bad.set(id, { id, type, pack: null, reason: 'the gateway has no such blob (not in its index)' });
  else if (!state.packsOnGateway.has(loc.pack))
    state.bad.set(id, { id, type, pack: loc.pack, reason: 'its pack is missing on the gateway' });
  return state.bad.has(id) ? null : (loc ?? null);
}

/**
 * Fetches blobs with ranged GETs of neighbouring blobs (mergeRuns), LANES at a time, and gives each
 * verified plaintext to use. A blob that is missing, cut short or does not verify goes to state.bad.
 */
async function readBlobs(state: State, ids: string[], type: BlobDamage['type'], use: (id: string, plain: Buffer) => void): Promise<void> {
  const byPack = new Map<string, { loc: BlobLocation }[]>();
  for (const id of ids) {
    const loc = locate(state, id, type);
    if (!loc) continue;
    const items = byPack.get(loc.pack) ?? [];
    items.push({ loc });
    byPack.set(loc.pack, items);
  }
  const runs = [...byPack.values()].flatMap((items) => mergeRuns(items, RUN_MAX));
  await inParallel(runs, LANES, async (run) => {
    const first = run[0]!.loc;
    const last = run[run.length - 1]!.loc;
    const size = last.offset + last.length - first.offset;
    const got = await fetchRun(state.remote, first.pack, first.offset, size);
    for (const { loc } of run) {
      const at = loc.offset - first.offset;
      if (typeof got === 'string' || at + loc.length > got.length) {
        state.bad.set(loc.id, { id: loc.id, type, pack: loc.pack, reason: typeof got === 'string' ? got : TRUNCATED });
        continue;
      }
      verifyOne(state, loc, type, got.subarray(at, at + loc.length), use);
    }
    state.report.blobsRead += run.length;
    state.report.bytesRead += size;
    if (type === 'data') state.opts.onProgress?.(run.length, size);
  });
}

function verifyOne(
  state: State,
  loc: BlobLocation,
  type: BlobDamage['type'],
  stored: Buffer,
  use: (id: string, plain: Buffer) => void,
): void {
  let plain: Buffer;
  try {
    plain = state.codec.decodeVerified(stored, loc.id, loc.plainLength);
  } catch (err) {
    if (!(err instanceof FormatError)) throw err;
    const reason = err.code === 'wrong-key' ? 'its bytes were altered (it does not decrypt with the key)' : err.message;
    state.bad.set(loc.id, { id: loc.id, type, pack: loc.pack, reason });
    return;
  }
  use(loc.id, plain);
}

/**
 * Reads size bytes of a pack from start: the bytes (fewer when the pack is cut short), or why there
 * are none. Network failures are thrown. A ranged GET through getFile, not readRange, which takes a
 * short body for a network failure and retries: the gateway answers a range past the end of a
 * truncated pack with the bytes it has, or 416.
 */
async function fetchRun(remote: Remote, pack: string, start: number, size: number): Promise<Buffer | string> {
  try {
    return (await remote.getFile(packPath(pack), { start, end: start + size - 1 })) ?? 'its pack is missing on the gateway';
  } catch (err) {
    if (err instanceof RemoteError && err.status === 416) return TRUNCATED;
    throw err;
  }
}

function packsOf(damaged: BlobDamage[]): { pack: string; blobs: string[] }[] {
  const byPack = new Map<string, string[]>();
  for (const d of damaged) {
    if (!d.pack) continue;
    const ids = byPack.get(d.pack) ?? [];
    ids.push(d.id);
    byPack.set(d.pack, ids);
  }
  return [...byPack].map(([pack, blobs]) => ({ pack, blobs }));
}

/**
 * The paths of one snapshot that a damaged blob affects: files using one, folders whose own listing
 * is lost ('dir/'); '/' when the root folder itself is lost. Walks the trees already in memory.
 */
export function affectedPaths(state: Pick<State, 'trees' | 'bad'>, root: string): string[] {
  if (!state.trees.has(root)) return ['/'];
  const out: string[] = [];
  const visit = (id: string, prefix: string) => {
    for (const e of state.trees.get(id) ?? []) {
      const rel = prefix ? `${prefix}/${e.name}` : e.name;
      if (e.type === 'file' && (e.content ?? []).some((c) => state.bad.has(c))) out.push(rel);
      if (e.type !== 'dir' || !e.subtree) continue;
      if (state.trees.has(e.subtree)) visit(e.subtree, rel);
      else out.push(`${rel}/`);
    }
  };
  visit(root, '');
  return out;
}

async function inParallel<T>(items: T[], width: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, lane));
}
