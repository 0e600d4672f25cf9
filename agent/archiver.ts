import { basename, resolve, sep } from 'node:path';
import { stat } from 'node:fs/promises';
import { scan, type ScanEntry, type ScanOptions } from './scan.js';
import { encodeTree, type SnapshotTotals, type TreeEntry } from '../format/index.js';
import type { BlobSink, FileOutcome, JobResult } from './file-pool.js';
import type { Packer } from './packer.js';
import { listingDigest, type FolderRecord } from './folder-cache.js';
import type { TreeCache, TreeLoader } from './trees.js';

/** What the archiver counts for the progress line and the snapshot's totals. */
export type ArchiveTotals = Omit<SnapshotTotals, 'bytesUploaded' | 'durationMs'>;

/** The file pool as the archiver uses it (file-pool.ts). */
export interface FileReaders {
  run(paths: string[]): Promise<{ result: Promise<JobResult> }>;
  /** Sends the packs the readers are still filling. */
  seal(): Promise<void>;
}

export interface ArchiverDeps {
  /** Trees are encoded here, on the main thread (they are small); file contents on the readers. */
  codec: { id(plain: Buffer): string; encode(plain: Buffer, id: string): Buffer };
  /** Starts the file readers, which ask this archiver (the sink) what to store. */
  readers: (sink: BlobSink) => FileReaders;
  known: Set<string>;
  packer: Packer;
  parentTrees: TreeLoader;
  /**
   * The parent snapshot's folders as the last backup on this PC saw them (folder-cache.ts), or null:
   * with them, a folder is compared with the parent's tree only when its listing changed.
   */
  folders: ReadonlyMap<string, FolderRecord> | null;
  /** New trees are kept here, so the next backup finds them on the PC. */
  treeCache?: TreeCache;
  exclude: string[];
  /**
   * `kura baseline mark`: files are read and hashed, but their data is not stored; their entries
   * carry `baseline` (format/README.md, Trees). Trees are stored as usual.
   */
  referenceOnly?: boolean;
  /** The walk (scan.ts), or the same on a worker thread (scan-thread.ts). */
  scan?: (root: string, opts: ScanOptions) => AsyncIterable<ScanEntry>;
  isCancelled: () => boolean;
  onFile?: (totals: ArchiveTotals, bytes: number) => void;
  onWarning?: (path: string, err: unknown) => void;
}

export class Cancelled extends Error {}

interface Frame {
  entry: TreeEntry | null;
  /** The folder's absolute path, and its path below the scanned root. */
  path: string;
  rel: string;
  /** The folder's key in the folder cache (folder-cache.ts). */
  key: string;
  /**
   * Entries, or promises that settle when their files are read (null: the file could not be read
   * and is left out).
   */
  entries: (TreeEntry | Promise<TreeEntry | null>)[];
  /** The parent snapshot's entries of this folder; null when the folder cache answered for it (`kept`). */
  parent: Map<string, TreeEntry> | null;
  parentId: string | null;
  /** Set when the folder's listing matches the folder cache: its files are the parent's, unread. */
  kept: FolderRecord | null;
  /** The folder's inode (recorded so that a renamed or moved folder is recognised next time). */
  ino: number;
  /** Set when a subfolder's tree differs from its tree in the parent snapshot. */
  childChanged: boolean;
}

/** Small changed files waiting to go to a reader together. */
interface SmallBatch {
  paths: string[];
  bytes: number;
  settle: ((outcome: FileOutcome) => void)[];
  fail: ((err: Error) => void)[];
}

/**
 * Turns folders into trees and blobs. Files unchanged since the parent snapshot (same size, mtime
 * and inode) are recorded by reference without being read, and a folder whose entries all match the
 * parent's keeps the parent's tree. Changed files go to the readers (worker threads), which ask
 * here which of their blobs the repository still needs; those come back encoded and are packed in
 * the order they arrive. The scan never waits for a folder's files: a tree is stored when its
 * entries settle, so reading, encoding and uploading overlap across folders.
 */
export class Archiver implements BlobSink {
  private packing: Promise<void> = Promise.resolve();
  private queued = 0;
  private failure: unknown = null;
  private readonly readers: FileReaders;
  private batch: SmallBatch = emptyBatch();
  /** Every tree of the snapshot being made (new or kept from the parent). */
  readonly treeIds = new Set<string>();
  /** Every folder of the snapshot being made, for the next backup's folder cache. */
  readonly folderRecords = new Map<string, FolderRecord>();
  /** The folder cache's records by folder inode (built when a folder is not found by its path). */
  private byIno: Map<number, FolderRecord> | null = null;
  readonly totals: ArchiveTotals = { files: 0, dirs: 0, bytes: 0, newFiles: 0, changedFiles: 0, unchangedFiles: 0, bytesRead: 0 };

  constructor(private readonly deps: ArchiverDeps) {
    this.readers = deps.readers(this);
  }

  async archive(folders: string[], parentRoot: string | null): Promise<string> {
    const parentTop = await this.deps.parentTrees.entries(parentRoot);
    const top: Promise<TreeEntry>[] = [];
    for (const [name, folder] of uniqueNames(folders.map((f) => resolve(f)))) {
      const st = await stat(folder, { bigint: true });
      const previous = parentTop.get(name);
      const { tree } = await this.archiveFolder(folder, name, previous?.type === 'dir' ? (previous.subtree ?? null) : null, Number(st.ino));
      top.push(
        tree.then((id) => ({ name, type: 'dir', mode: Number(st.mode & 0o7777n), mtimeNs: st.mtimeNs.toString(), size: 0, subtree: id })),
      );
      this.totals.dirs++;
    }
    await this.dispatchBatch();
    const root = await this.storeTree(await Promise.all(top), parentTop, parentRoot);
    await this.readers.seal();
    await this.packing;
    if (this.failure) throw this.failure;
    return root;
  }

  /** Which of ids must be stored; claims them. Waits while the pack queue is long (uploads behind). */
  async need(ids: string[]): Promise<Uint8Array> {
    while (this.queued > QUEUE_LIMIT && !this.failure) await this.packing;
    // Readers ask before every batch, so a cancel stops them within one batch, not after the last upload.
    if (this.deps.isCancelled()) throw new Cancelled('cancelled');
    if (this.failure) throw this.failure;
    this.deps.packer.check();
    const out = new Uint8Array(ids.length);
    if (this.deps.referenceOnly) return out;
    ids.forEach((id, i) => {
      if (this.deps.known.has(id)) return;
      this.deps.known.add(id);
      out[i] = 1;
    });
    return out;
  }

  upload(id: string, bytes: Buffer): Promise<void> {
    return this.deps.packer.upload(id, bytes);
  }

  /**
   * Scans one folder; `tree` (the folder's tree id) settles once its files are stored. The wrappers
   * here keep the two waits apart: an async function returning a bare promise would wait for it.
   */
  private async archiveFolder(folder: string, key: string, parentTree: string | null, ino: number): Promise<{ tree: Promise<string> }> {
    let rootListing: string | null = null;
    const walk = (this.deps.scan ?? scan)(folder, {
      exclude: this.deps.exclude,
      onWarning: this.deps.onWarning,
      listings: true,
      onRootListing: (digest) => (rootListing = digest),
    });
    const stack: Frame[] = [];
    // The root's listing arrives with the first entry (or the end of an empty folder).
    const rootRecord = parentTree ? this.deps.folders?.get(key) : undefined;
    const root = async () => (stack[0] ??= await this.openFrame(null, folder, '', key, ino, parentTree, rootRecord, rootListing));
    for await (const e of walk) {
      if (this.deps.isCancelled()) throw new Cancelled('cancelled');
      if (this.failure) throw this.failure;
      this.deps.packer.check();
      await root();
      while (stack.length > 1 && !e.rel.startsWith(stack[stack.length - 1]!.rel + '/')) this.closeFrame(stack);
      const frame = stack[stack.length - 1]!;
      const name = e.rel.slice(e.rel.lastIndexOf('/') + 1);
      if (e.type === 'dir') {
        const childKey = `${frame.key}/${name}`;
        const { parentId, record } = this.previousFolder(frame, name, childKey, e.ino);
        stack.push(await this.openFrame(baseEntry(e, name), e.path, e.rel, childKey, e.ino, parentId, record, e.listing ?? null));
      } else if (frame.kept && e.type === 'file') {
        this.countUnchanged(e.size);
        frame.entries.push(baseEntry(e, name));
      } else {
        frame.entries.push(handled((await this.archiveEntry(e, name, frame.parent?.get(name))).entry));
      }
    }
    const rootFrame = await root();
    while (stack.length > 1) this.closeFrame(stack);
    return { tree: handled(this.treeOf(rootFrame)) };
  }

  /**
   * A folder about to be scanned. When its listing matches the folder cache, its files are all
   * unchanged and the parent's tree is not decoded; otherwise it is (from the bulk preload, or now).
   */
  private async openFrame(
    entry: TreeEntry | null,
    path: string,
    rel: string,
    key: string,
    ino: number,
    parentId: string | null,
    record: FolderRecord | undefined,
    listing: string | null,
  ): Promise<Frame> {
    const kept = record && record.tree === parentId && record.listing === listing && this.deps.known.has(record.tree) ? record : null;
    const parent = kept ? null : await this.deps.parentTrees.entries(parentId);
    return { entry, path, rel, key, entries: [], parent, parentId, kept, ino, childChanged: false };
  }

  /**
   * A subfolder's tree in the parent snapshot, and its folder cache record: found by its path, or
   * by its inode when the folder was renamed or moved (so its files are not read again).
   */
  private previousFolder(frame: Frame, name: string, key: string, ino: number): { parentId: string | null; record?: FolderRecord } {
    const folders = this.deps.folders;
    if (!folders) {
      const previous = frame.parent?.get(name);
      return { parentId: previous?.type === 'dir' ? (previous.subtree ?? null) : null };
    }
    const record = folders.get(key) ?? this.movedFolder(folders, ino);
    return { parentId: record?.tree ?? null, record };
  }

  /** The record of the folder that had this inode, when exactly one had it. */
  private movedFolder(folders: ReadonlyMap<string, FolderRecord>, ino: number): FolderRecord | undefined {
    if (!this.byIno) {
      this.byIno = new Map();
      const seen = new Set<number>();
      for (const r of folders.values()) {
        if (r.ino === undefined) continue;
        if (seen.has(r.ino)) this.byIno.delete(r.ino);
        else this.byIno.set(r.ino, r);
        seen.add(r.ino);
      }
    }
    return this.byIno.get(ino);
  }

  /** Ends a folder: its tree is stored once its entries settle, without holding up the scan. */
  private closeFrame(stack: Frame[]): void {
    const frame = stack.pop()!;
    const above = stack[stack.length - 1]!;
    const entry = this.treeOf(frame).then((subtree) => {
      if (subtree !== frame.parentId) above.childChanged = true;
      return { ...frame.entry!, subtree };
    });
    above.entries.push(handled(entry));
    this.totals.dirs++;
  }

  private async treeOf(frame: Frame): Promise<string> {
    let entries = (await Promise.all(frame.entries)).filter((e): e is TreeEntry => e !== null);
    let parent = frame.parent;
    if (frame.kept) {
      const record = frame.kept;
      if (!frame.childChanged) {
        this.treeIds.add(record.tree);
        this.folderRecords.set(frame.key, { ...record, ino: frame.ino });
        return record.tree;
      }
      // A subfolder changed: this folder's tree is made anew, its files' contents taken from the parent.
      const decoded = await this.deps.parentTrees.entries(frame.parentId);
      const filled = await Promise.all(entries.map((e) => this.withParentContent(e, decoded, frame)));
      entries = filled.filter((e): e is TreeEntry => e !== null);
      parent = decoded;
    }
    const id = await this.storeTree(entries, parent ?? new Map(), frame.parentId);
    this.folderRecords.set(frame.key, { tree: id, listing: listingDigest(entries), ino: frame.ino });
    return id;
  }

  /**
   * A kept file's entry with its content ids from the parent tree. Should the parent disagree with
   * the folder cache (it cannot, unless the cache is damaged in a way its seal missed), the file is
   * read instead: a cache costs time, never a wrong backup.
   */
  private async withParentContent(e: TreeEntry, parent: Map<string, TreeEntry>, frame: Frame): Promise<TreeEntry | null> {
    if (e.type !== 'file' || e.content !== undefined) return e;
    const previous = parent.get(e.name);
    if (previous && unchanged(previous, e)) return reused(e, previous);
    this.totals.files--;
    this.totals.bytes -= e.size;
    this.totals.unchangedFiles--;
    const scanned: ScanEntry = {
      path: frame.path.endsWith(sep) ? frame.path + e.name : frame.path + sep + e.name,
      rel: frame.rel ? `${frame.rel}/${e.name}` : e.name,
      type: 'file',
      size: e.size,
      mode: e.mode,
      mtimeNs: BigInt(e.mtimeNs),
      ino: e.ino ?? 0,
    };
    const { entry } = await this.archiveEntry(scanned, e.name, undefined);
    await this.dispatchBatch();
    return entry;
  }

  private countUnchanged(size: number): void {
    this.totals.files++;
    this.totals.bytes += size;
    this.totals.unchangedFiles++;
    this.deps.onFile?.(this.totals, size);
  }

  /** The entry of a file or symlink; a changed file's settles when a reader has stored its blobs. */
  private async archiveEntry(e: ScanEntry, name: string, previous: TreeEntry | undefined): Promise<{ entry: Promise<TreeEntry | null> }> {
    const entry = baseEntry(e, name);
    if (e.type === 'symlink') return { entry: Promise.resolve({ ...entry, target: e.target ?? '' }) };
    if (previous && unchanged(previous, entry)) {
      this.countUnchanged(e.size);
      return { entry: Promise.resolve(reused(entry, previous)) };
    }
    this.totals.files++;
    this.totals.bytes += e.size;
    const kind = previous ? 'changedFiles' : 'newFiles';
    this.totals[kind]++;
    const { outcome } = await this.readFile(e.path, e.size);
    const done = outcome.then((o) => {
      if ('error' in o) {
        this.totals.files--;
        this.totals.bytes -= e.size;
        this.totals[kind]--;
        this.deps.onWarning?.(e.path, new Error(o.error));
        return null;
      }
      this.deps.onFile?.(this.totals, e.size);
      return this.deps.referenceOnly ? { ...entry, content: o.content, baseline: true as const } : { ...entry, content: o.content };
    });
    return { entry: done };
  }

  /** Hands a file to the readers: a big one alone, small ones gathered in batches. */
  private async readFile(path: string, size: number): Promise<{ outcome: Promise<FileOutcome> }> {
    const outcome = new Promise<FileOutcome>((resolve, reject) => {
      this.batch.paths.push(path);
      this.batch.bytes += size;
      this.batch.settle.push(resolve);
      this.batch.fail.push(reject);
    });
    if (size >= SMALL_FILE || this.batch.paths.length >= BATCH_FILES || this.batch.bytes >= BATCH_BYTES) await this.dispatchBatch();
    return { outcome: handled(outcome) };
  }

  private async dispatchBatch(): Promise<void> {
    const batch = this.batch;
    if (batch.paths.length === 0) return;
    this.batch = emptyBatch();
    const { result } = await this.readers.run(batch.paths);
    result.then(
      (r) => {
        this.totals.bytesRead += r.bytesRead;
        r.files.forEach((o, i) => batch.settle[i]!(o));
      },
      (err: Error) => batch.fail.forEach((f) => f(err)),
    );
  }

  /** Stores a tree, or keeps the parent's when nothing in the folder changed. */
  private async storeTree(entries: TreeEntry[], parent: Map<string, TreeEntry>, parentId: string | null): Promise<string> {
    if (parentId && this.deps.known.has(parentId) && sameEntries(entries, parent)) {
      this.treeIds.add(parentId);
      return parentId;
    }
    const plain = encodeTree(entries);
    const id = this.deps.codec.id(plain);
    this.treeIds.add(id);
    if (!this.deps.known.has(id)) {
      this.deps.known.add(id);
      const stored = this.deps.codec.encode(plain, id);
      this.deps.treeCache?.keep(id, stored);
      this.enqueue(id, 'tree', stored, plain.length);
    }
    return id;
  }

  /** Every blob goes to the packer through one queue, in the order it was enqueued. */
  private enqueue(id: string, type: 'data' | 'tree', stored: Buffer, plainLength: number): void {
    this.queued++;
    this.packing = this.packing
      .then(async () => {
        this.queued--;
        if (!this.failure) await this.deps.packer.add(id, type, stored, plainLength);
      })
      .catch((err: unknown) => {
        this.failure ??= err;
      });
  }
}

/** Files up to this size are read in batches; a batch goes out at this many files or bytes. */
const SMALL_FILE = 1 << 20;
const BATCH_FILES = 32;
const BATCH_BYTES = 4 << 20;
/** Blobs waiting for the packer before readers are held back. */
const QUEUE_LIMIT = 64;

function emptyBatch(): SmallBatch {
  return { paths: [], bytes: 0, settle: [], fail: [] };
}

/** Marks a promise as handled now (it is awaited later), so a failure while others run is no crash. */
function handled<T>(p: Promise<T>): Promise<T> {
  p.catch(() => undefined);
  return p;
}

function baseEntry(e: ScanEntry, name: string): TreeEntry {
  return { name, type: e.type, mode: e.mode & 0o7777, mtimeNs: e.mtimeNs.toString(), size: e.type === 'file' ? e.size : 0, ino: e.ino };
}

function unchanged(previous: TreeEntry, now: TreeEntry): boolean {
  return previous.type === 'file' && previous.size === now.size && previous.mtimeNs === now.mtimeNs && previous.ino === now.ino;
}

/** An unchanged file's entry: the parent's content (and its baseline mark, if the parent had one). */
function reused(entry: TreeEntry, previous: TreeEntry): TreeEntry {
  return previous.baseline ? { ...entry, content: previous.content ?? [], baseline: true } : { ...entry, content: previous.content ?? [] };
}

/** True when entries are exactly the parent tree's (so its stored tree can be kept as it is). */
function sameEntries(entries: TreeEntry[], parent: Map<string, TreeEntry>): boolean {
  if (entries.length !== parent.size) return false;
  return entries.every((e) => {
    const p = parent.get(e.name);
    return p !== undefined && sameEntry(e, p);
  });
}

function sameEntry(a: TreeEntry, b: TreeEntry): boolean {
  const scalar = (['type', 'mode', 'mtimeNs', 'size', 'ino', 'subtree', 'target', 'baseline'] as const).every(
    (k) => (a[k] ?? null) === (b[k] ?? null),
  );
  if (!scalar) return false;
  const ca = a.content ?? [];
  const cb = b.content ?? [];
  return (a.content === undefined) === (b.content === undefined) && ca.length === cb.length && ca.every((id, i) => id === cb[i]);
}

/** Names for the top-level folders: their base names, made unique (photos, photos-2, …). */
function uniqueNames(folders: string[]): [string, string][] {
  const used = new Set<string>();
  return folders.map((f) => {
    const base = basename(f) || 'root';
    let name = base;
    for (let i = 2; used.has(name); i++) name = `${base}-${i}`;
    used.add(name);
    return [name, f];
  });
}
