import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, open, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { blobTypeToCode, decodeConfig, readPackTrailer, verifyPlainBlob, type PackEntry } from '../../format/index.js';
import { KuraError } from '../errors.js';
import { BlobIndex, INDEX_FILE_NAME, type IndexedPack } from './blob-index.js';
import type { AreaDirs } from './data-dir.js';

/**
 * What `kura admin check` finds wrong in one user's packs and blob index, without any key:
 *   bad-name         a file under packs/ that is not packs/<2 hex>/<64 hex id> (or not a regular file)
 *   hash-mismatch    the pack's bytes do not hash to its name (altered or damaged on disk)
 *   unreadable       its header, trailer or layout is wrong (format/pack.ts), e.g. a truncated pack
 *   bad-blob         (plaintext repositories) a blob does not verify against its id
 *   not-indexed      a readable pack that the index does not list
 *   index-disagrees  the index lists other blobs, offsets or lengths for a pack than its trailer
 *   missing-pack     the index lists blobs in a pack that is not on disk
 *   index-damaged    the index file cannot be read
 */
export type PackProblemKind =
  'bad-name' | 'hash-mismatch' | 'unreadable' | 'bad-blob' | 'not-indexed' | 'index-disagrees' | 'missing-pack' | 'index-damaged';

export interface PackProblem {
  kind: PackProblemKind;
  /** The pack's id, or for bad-name its path under packs/; '' for index-damaged. */
  pack: string;
  /** The blobs concerned, where known (all of a hash-mismatch pack's blobs: without a key, which one is damaged is unknown). */
  blobs: string[];
  message: string;
}

export interface PackCheckReport {
  /** Whether the repository is encrypted (null: no config, nothing to go by). */
  encrypted: boolean | null;
  /** Pack files examined, blobs their trailers list, and their bytes. */
  packs: number;
  blobs: number;
  bytes: number;
  /** Packs the index lists, and whether the index file exists at all. */
  indexedPacks: number;
  indexExists: boolean;
  problems: PackProblem[];
}

/** One pack file with a valid name, as examined. */
interface ScannedPack {
  id: string;
  path: string;
  size: number;
  mtimeMs: number;
  /** The trailer's blobs; null when it cannot be read. */
  entries: PackEntry[] | null;
}

const HEX64 = /^[0-9a-f]{64}$/;
const HEX2 = /^[0-9a-f]{2}$/;
/** Packs hashed at once: the disk, not the CPU, is the limit. */
const WIDTH = 2;

/**
 * Checks every pack of an area (dirs.kura/packs) against its name, its own layout and the area's blob
 * index (dirs.meta). Reads every pack byte once (twice for a plaintext repository, whose blobs are
 * also verified). Never changes anything. Throws only on I/O errors other than a missing folder.
 */
export async function checkArea(dirs: AreaDirs, onPack?: (bytes: number) => void): Promise<PackCheckReport & { scanned: ScannedPack[] }> {
  const encrypted = await readEncrypted(dirs);
  const { files, problems } = await listPackFiles(join(dirs.kura, 'packs'));
  const scanned: ScannedPack[] = [];
  await inParallel(files, WIDTH, async (file) => {
    const { pack, problems: found } = await examinePack(file, encrypted !== false);
    scanned.push(pack);
    problems.push(...found);
    onPack?.(pack.size);
  });
  scanned.sort((a, b) => a.id.localeCompare(b.id));
  const index = new BlobIndex(indexFile(dirs));
  const indexExists = await index.exists();
  const indexed = await index.list().catch((err: unknown) => {
    if (!(err instanceof KuraError)) throw err;
    problems.push({ kind: 'index-damaged', pack: '', blobs: [], message: `the blob index cannot be read (${err.message})` });
    return [];
  });
  problems.push(...compareWithIndex(scanned, indexed));
  return {
    encrypted,
    packs: scanned.length,
    blobs: scanned.reduce((n, p) => n + (p.entries?.length ?? 0), 0),
    bytes: scanned.reduce((n, p) => n + p.size, 0),
    indexedPacks: new Set(indexed.map((p) => p.pack)).size,
    indexExists,
    problems: problems.sort((a, b) => a.pack.localeCompare(b.pack) || a.kind.localeCompare(b.kind)),
    scanned,
  };
}

/**
 * Replaces the area's index with one built from the pack trailers alone (the source of truth): every
 * pack with a valid name and a readable trailer, a damaged one included (its good blobs stay
 * reachable; `kura check --read-data` names the bad ones). Packs the old index listed keep their
 * order; the others follow by time. The swap is atomic (BlobIndex.replace); a pack stored by the
 * gateway meanwhile is appended afterwards, so a backup running alongside loses no index entry.
 * Returns the packs and blobs indexed.
 */
export async function rebuildIndex(dirs: AreaDirs, scanned: ScannedPack[]): Promise<{ packs: number; blobs: number }> {
  const index = new BlobIndex(indexFile(dirs));
  const before = await index.list().catch(() => [] as IndexedPack[]);
  const rank = new Map<string, number>();
  before.forEach((p, i) => rank.set(p.pack, rank.get(p.pack) ?? i));
  const order = (p: ScannedPack) => rank.get(p.id) ?? before.length;
  const readable = scanned.filter((p): p is ScannedPack & { entries: PackEntry[] } => p.entries !== null);
  readable.sort((a, b) => order(a) - order(b) || a.mtimeMs - b.mtimeMs || a.id.localeCompare(b.id));
  await index.replace(readable.map((p) => ({ pack: p.id, blobs: toIndexed(p.entries) })));
  const done = new Set(readable.map((p) => p.id));
  let packs = readable.length;
  let blobs = readable.reduce((n, p) => n + p.entries.length, 0);
  for (const file of (await listPackFiles(join(dirs.kura, 'packs'))).files.filter((f) => !done.has(f.id))) {
    const entries = await readTrailer(file.path).catch(() => null);
    if (!entries) continue;
    await index.add(file.id, toIndexed(entries));
    packs++;
    blobs += entries.length;
  }
  return { packs, blobs };
}

export function indexFile(dirs: AreaDirs): string {
  return join(dirs.meta, INDEX_FILE_NAME);
}

/** The repository's encrypted flag from its config; null when there is no readable config. */
async function readEncrypted(dirs: AreaDirs): Promise<boolean | null> {
  const bytes = await readFile(join(dirs.kura, 'config')).catch(() => null);
  if (!bytes) return null;
  try {
    return decodeConfig(bytes).encrypted;
  } catch {
    return null;
  }
}

/** Pack files with a valid name, and a bad-name problem for anything else under packs/. */
export async function listPackFiles(packsDir: string): Promise<{ files: { id: string; path: string }[]; problems: PackProblem[] }> {
  const files: { id: string; path: string }[] = [];
  const problems: PackProblem[] = [];
  const bad = (rel: string, why: string) =>
    problems.push({ kind: 'bad-name', pack: rel, blobs: [], message: `packs/${rel} ${why}; the agent never reads it` });
  for (const prefix of await readdir(packsDir).catch(() => [] as string[])) {
    const st = await lstat(join(packsDir, prefix));
    if (!st.isDirectory() || !HEX2.test(prefix)) {
      bad(prefix, 'is not a folder named by two hex digits');
      continue;
    }
    for (const name of await readdir(join(packsDir, prefix))) {
      const path = join(packsDir, prefix, name);
      const kind = await lstat(path);
      if (!kind.isFile()) bad(`${prefix}/${name}`, 'is not a regular file');
      else if (!HEX64.test(name) || name.slice(0, 2) !== prefix)
        bad(`${prefix}/${name}`, 'is not named by its 64-hex id under its first two digits');
      else files.push({ id: name, path });
    }
  }
  return { files, problems };
}

/** Hashes a pack, reads its trailer, and (plaintext) verifies each blob. */
async function examinePack(
  file: { id: string; path: string },
  encrypted: boolean,
): Promise<{ pack: ScannedPack; problems: PackProblem[] }> {
  const st = await lstat(file.path);
  const pack: ScannedPack = { ...file, size: st.size, mtimeMs: st.mtimeMs, entries: null };
  const problems: PackProblem[] = [];
  const hash = createHash('sha256');
  await pipeline(createReadStream(file.path), hash);
  const actual = hash.digest('hex');
  try {
    pack.entries = await readTrailer(file.path);
  } catch (err) {
    problems.push({ kind: 'unreadable', pack: file.id, blobs: [], message: `pack ${file.id} cannot be read: ${(err as Error).message}` });
  }
  const ids = (pack.entries ?? []).map((e) => e.id);
  if (actual !== file.id) {
    const which = pack.entries ? `; it holds ${ids.length} blob(s), any of which may be damaged` : '';
    problems.push({
      kind: 'hash-mismatch',
      pack: file.id,
      blobs: ids,
      message: `pack ${file.id} does not hash to its name (SHA-256 ${actual}): its bytes were altered${which}`,
    });
  }
  if (!encrypted && pack.entries) {
    const bad = await badPlainBlobs(file.path, pack.entries);
    if (bad.length > 0)
      problems.push({
        kind: 'bad-blob',
        pack: file.id,
        blobs: bad,
        message: `pack ${file.id}: ${bad.length} blob(s) do not match their id`,
      });
  }
  return { pack, problems };
}

/** The trailer's blobs, through format/pack.ts's reader (three small reads). Throws FormatError. */
async function readTrailer(path: string): Promise<PackEntry[]> {
  const fh = await open(path, 'r');
  try {
    const { size } = await fh.stat();
    return await readPackTrailer(size, async (offset, length) => {
      const buf = Buffer.alloc(length);
      const { bytesRead } = await fh.read(buf, 0, length, offset);
      return buf.subarray(0, bytesRead);
    });
  } finally {
    await fh.close();
  }
}

async function badPlainBlobs(path: string, entries: PackEntry[]): Promise<string[]> {
  const bad: string[] = [];
  const fh = await open(path, 'r');
  try {
    for (const e of entries) {
      const buf = Buffer.alloc(e.length);
      await fh.read(buf, 0, e.length, e.offset);
      try {
        verifyPlainBlob(buf, e.id, e.plainLength);
      } catch {
        bad.push(e.id);
      }
    }
  } finally {
    await fh.close();
  }
  return bad;
}

/** Packs on disk against the index: unindexed packs, disagreeing entries, and indexed packs that are gone. */
export function compareWithIndex(scanned: { id: string; entries: PackEntry[] | null }[], indexed: IndexedPack[]): PackProblem[] {
  const problems: PackProblem[] = [];
  const byPack = new Map<string, Map<string, IndexedPack['blobs'][number]>>();
  for (const p of indexed) {
    const blobs = byPack.get(p.pack) ?? new Map<string, IndexedPack['blobs'][number]>();
    for (const b of p.blobs) blobs.set(b.id, b);
    byPack.set(p.pack, blobs);
  }
  const onDisk = new Set(scanned.map((p) => p.id));
  for (const p of scanned) {
    const listed = byPack.get(p.id);
    if (!p.entries) continue;
    if (!listed) {
      problems.push({
        kind: 'not-indexed',
        pack: p.id,
        blobs: p.entries.map((e) => e.id),
        message: `pack ${p.id} (${p.entries.length} blobs) is not in the index: agents cannot see its blobs`,
      });
      continue;
    }
    const disagree = disagreements(toIndexed(p.entries), listed);
    if (disagree.length > 0)
      problems.push({
        kind: 'index-disagrees',
        pack: p.id,
        blobs: disagree,
        message: `the index lists ${disagree.length} blob(s) of pack ${p.id} differently from its trailer (id, type, offset or length)`,
      });
  }
  for (const [pack, blobs] of byPack) {
    if (onDisk.has(pack)) continue;
    problems.push({
      kind: 'missing-pack',
      pack,
      blobs: [...blobs.keys()],
      message: `pack ${pack} is in the index (${blobs.size} blobs) but not on disk: those blobs are lost`,
    });
  }
  return problems;
}

/** Ids listed differently by the trailer and the index (in one but not the other, or with other fields). */
function disagreements(trailer: IndexedPack['blobs'], listed: Map<string, IndexedPack['blobs'][number]>): string[] {
  const out = new Set<string>();
  const inTrailer = new Set<string>();
  for (const t of trailer) {
    inTrailer.add(t.id);
    const l = listed.get(t.id);
    if (!l || l.type !== t.type || l.offset !== t.offset || l.length !== t.length || l.plainLength !== t.plainLength) out.add(t.id);
  }
  for (const id of listed.keys()) if (!inTrailer.has(id)) out.add(id);
  return [...out];
}

function toIndexed(entries: PackEntry[]): IndexedPack['blobs'] {
  return entries.map((e) => ({ id: e.id, type: blobTypeToCode(e.type), offset: e.offset, length: e.length, plainLength: e.plainLength }));
}

async function inParallel<T>(items: T[], width: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, lane));
}
