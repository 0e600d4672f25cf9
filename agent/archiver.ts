import { basename, resolve } from 'node:path';
import { readFile, stat } from 'node:fs/promises';
import { chunkBuffer, chunkFile, type ChunkerParams } from './chunker.js';
import { scan, type ScanEntry } from './scan.js';
import { encodeTree, type SnapshotTotals, type TreeEntry } from '../format/index.js';
import type { Packer } from './packer.js';
import type { TreeLoader } from './trees.js';

/** What the archiver counts for the progress line and the snapshot's totals. */
export type ArchiveTotals = Omit<SnapshotTotals, 'bytesUploaded' | 'durationMs'>;

export interface ArchiverDeps {
  chunker: ChunkerParams;
  codec: { id(plain: Buffer): string; encode(plain: Buffer): Buffer };
  /** Encodes data chunks on worker threads; trees are encoded inline (they are small). */
  pool: { submit(plain: Buffer): Promise<{ result: Promise<{ id: string; stored: Buffer }> }> };
  known: Set<string>;
  packer: Packer;
  parentTrees: TreeLoader;
  exclude: string[];
  isCancelled: () => boolean;
  onFile?: (totals: ArchiveTotals, bytes: number) => void;
  onWarning?: (path: string, err: unknown) => void;
}

export class Cancelled extends Error {}

interface Frame {
  rel: string;
  entry: TreeEntry | null;
  /** Files finish when their chunks come back from the encoders; a folder's tree waits for them. */
  entries: Promise<TreeEntry>[];
  parent: Map<string, TreeEntry>;
}

/**
 * Turns folders into trees and blobs: files unchanged since the parent snapshot (same size, mtime and
 * inode) are recorded by reference without being read; everything else is chunked, and only blobs
 * the gateway does not hold yet are encoded and packed. Returns the root tree's id.
 */
export class Archiver {
  /** Blobs reach the packer one at a time, in the order they were read. */
  private packing: Promise<unknown> = Promise.resolve();
  private queued = 0;
  private reading = 0;
  private readonly readerFree: (() => void)[] = [];
  readonly totals: ArchiveTotals = { files: 0, dirs: 0, bytes: 0, newFiles: 0, changedFiles: 0, unchangedFiles: 0, bytesRead: 0 };

  constructor(private readonly deps: ArchiverDeps) {}

  async archive(folders: string[], parentRoot: string | null): Promise<string> {
    const parentTop = await this.deps.parentTrees.entries(parentRoot);
    const top: TreeEntry[] = [];
    for (const [name, folder] of uniqueNames(folders.map((f) => resolve(f)))) {
      const st = await stat(folder, { bigint: true });
      const subtree = await this.archiveFolder(folder, parentTop.get(name)?.subtree ?? null);
      top.push({ name, type: 'dir', mode: Number(st.mode & 0o7777n), mtimeNs: st.mtimeNs.toString(), size: 0, subtree });
      this.totals.dirs++;
    }
    return this.storeTree(top);
  }

  private async archiveFolder(folder: string, parentTree: string | null): Promise<string> {
    const stack: Frame[] = [{ rel: '', entry: null, entries: [], parent: await this.deps.parentTrees.entries(parentTree) }];
    for await (const e of scan(folder, { exclude: this.deps.exclude, onWarning: this.deps.onWarning })) {
      if (this.deps.isCancelled()) throw new Cancelled('cancelled');
      while (stack.length > 1 && !e.rel.startsWith(stack[stack.length - 1]!.rel + '/')) await this.closeFrame(stack);
      const frame = stack[stack.length - 1]!;
      const name = e.rel.slice(e.rel.lastIndexOf('/') + 1);
      if (e.type === 'dir') {
        const previous = frame.parent.get(name);
        const parent = await this.deps.parentTrees.entries(previous?.type === 'dir' ? (previous.subtree ?? null) : null);
        stack.push({ rel: e.rel, entry: baseEntry(e, name), entries: [], parent });
      } else {
        frame.entries.push(handled((await this.archiveEntry(e, name, frame.parent.get(name))).entry));
      }
    }
    while (stack.length > 1) await this.closeFrame(stack);
    return this.storeTree(await Promise.all(stack[0]!.entries));
  }

  private async closeFrame(stack: Frame[]): Promise<void> {
    const frame = stack.pop()!;
    const subtree = await this.storeTree(await Promise.all(frame.entries));
    stack[stack.length - 1]!.entries.push(Promise.resolve({ ...frame.entry!, subtree }));
    this.totals.dirs++;
  }

  /** Reads the file now; its entry completes when its chunks are encoded and packed. */
  private async archiveEntry(e: ScanEntry, name: string, previous: TreeEntry | undefined): Promise<{ entry: Promise<TreeEntry> }> {
    const entry = baseEntry(e, name);
    if (e.type === 'symlink') return { entry: Promise.resolve({ ...entry, target: e.target ?? '' }) };
    this.totals.files++;
    this.totals.bytes += e.size;
    if (previous && unchanged(previous, entry)) {
      this.totals.unchangedFiles++;
      this.deps.onFile?.(this.totals, e.size);
      return { entry: Promise.resolve({ ...entry, content: previous.content ?? [] }) };
    }
    if (previous) this.totals.changedFiles++;
    else this.totals.newFiles++;
    // Small files are read several at a time: their cost is the latency of open/read/close, not bytes.
    const { ids } = e.size <= SMALL_FILE ? await this.readSmall(e.path) : await this.storeFile(e.path);
    const done = ids.then((content) => {
      this.deps.onFile?.(this.totals, e.size);
      return { ...entry, content };
    });
    return { entry: done };
  }

  /** Reads a big file chunk by chunk now; `ids` settles when every chunk is encoded and packed. */
  private async storeFile(path: string): Promise<{ ids: Promise<string[]> }> {
    const ids: Promise<string>[] = [];
    for await (const chunk of chunkFile(path, this.deps.chunker)) {
      if (this.deps.isCancelled()) throw new Cancelled('cancelled');
      this.totals.bytesRead += chunk.length;
      ids.push((await this.submit(chunk)).id);
    }
    return { ids: handled(Promise.all(ids)) };
  }

  /** Starts reading a small file when a reader is free; its ids settle once it is read and encoded. */
  private async readSmall(path: string): Promise<{ ids: Promise<string[]> }> {
    while (this.reading >= SMALL_READERS) await new Promise<void>((r) => this.readerFree.push(r));
    this.reading++;
    const ids = readFile(path)
      .then(async (bytes) => {
        if (this.deps.isCancelled()) throw new Cancelled('cancelled');
        this.totals.bytesRead += bytes.length;
        const out: Promise<string>[] = [];
        for (const chunk of chunkBuffer(bytes, this.deps.chunker)) out.push((await this.submit(chunk)).id);
        return Promise.all(out);
      })
      .finally(() => {
        this.reading--;
        this.readerFree.shift()?.();
      });
    return { ids: handled(ids) };
  }

  /** Hands a chunk to the encoders once one is free (and uploads keep up); `id` settles when it is packed. */
  private async submit(chunk: Buffer): Promise<{ id: Promise<string> }> {
    if (this.queued > 32) await this.packing;
    const { result } = await this.deps.pool.submit(chunk);
    const length = chunk.length;
    return { id: handled(result.then((encoded) => this.pack(encoded.id, 'data', () => encoded.stored, length))) };
  }

  private async storeTree(entries: TreeEntry[]): Promise<string> {
    const plain = encodeTree(entries);
    return this.pack(this.deps.codec.id(plain), 'tree', () => this.deps.codec.encode(plain), plain.length);
  }

  /** Packs a blob the gateway does not hold yet; every call goes through one queue, in order. */
  private pack(id: string, type: 'data' | 'tree', stored: () => Buffer, plainLength: number): Promise<string> {
    this.queued++;
    const next = this.packing.then(async () => {
      this.queued--;
      if (!this.deps.known.has(id)) {
        this.deps.known.add(id);
        await this.deps.packer.add(id, type, stored(), plainLength);
      }
      return id;
    });
    this.packing = next.catch(() => undefined);
    return next;
  }
}

const SMALL_FILE = 1 << 20;
const SMALL_READERS = 16;

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
