import { basename, resolve } from 'node:path';
import { stat } from 'node:fs/promises';
import { chunkFile, type ChunkerParams } from './chunker.js';
import { scan, type ScanEntry } from './scan.js';
import { encodeTree, type SnapshotTotals, type TreeEntry } from '../format/index.js';
import type { Packer } from './packer.js';
import type { TreeLoader } from './trees.js';

/** What the archiver counts for the progress line and the snapshot's totals. */
export type ArchiveTotals = Omit<SnapshotTotals, 'bytesUploaded' | 'durationMs'>;

export interface ArchiverDeps {
  chunker: ChunkerParams;
  codec: { id(plain: Buffer): string; encode(plain: Buffer): Buffer };
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
  entries: TreeEntry[];
  parent: Map<string, TreeEntry>;
}

/**
 * Turns folders into trees and blobs: files unchanged since the parent snapshot (same size, mtime and
 * inode) are recorded by reference without being read; everything else is chunked, and only blobs
 * the gateway does not hold yet are encoded and packed. Returns the root tree's id.
 */
export class Archiver {
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
        frame.entries.push(await this.archiveEntry(e, name, frame.parent.get(name)));
      }
    }
    while (stack.length > 1) await this.closeFrame(stack);
    return this.storeTree(stack[0]!.entries);
  }

  private async closeFrame(stack: Frame[]): Promise<void> {
    const frame = stack.pop()!;
    const subtree = await this.storeTree(frame.entries);
    stack[stack.length - 1]!.entries.push({ ...frame.entry!, subtree });
    this.totals.dirs++;
  }

  private async archiveEntry(e: ScanEntry, name: string, previous: TreeEntry | undefined): Promise<TreeEntry> {
    const entry = baseEntry(e, name);
    if (e.type === 'symlink') return { ...entry, target: e.target ?? '' };
    this.totals.files++;
    this.totals.bytes += e.size;
    if (previous && unchanged(previous, entry)) {
      this.totals.unchangedFiles++;
      this.deps.onFile?.(this.totals, e.size);
      return { ...entry, content: previous.content ?? [] };
    }
    if (previous) this.totals.changedFiles++;
    else this.totals.newFiles++;
    const content = await this.storeFile(e.path);
    this.deps.onFile?.(this.totals, e.size);
    return { ...entry, content };
  }

  private async storeFile(path: string): Promise<string[]> {
    const ids: string[] = [];
    for await (const chunk of chunkFile(path, this.deps.chunker)) {
      if (this.deps.isCancelled()) throw new Cancelled('cancelled');
      this.totals.bytesRead += chunk.length;
      ids.push(await this.storeBlob(chunk, 'data'));
    }
    return ids;
  }

  private async storeTree(entries: TreeEntry[]): Promise<string> {
    return this.storeBlob(encodeTree(entries), 'tree');
  }

  private async storeBlob(plain: Buffer, type: 'data' | 'tree'): Promise<string> {
    const id = this.deps.codec.id(plain);
    if (!this.deps.known.has(id)) {
      this.deps.known.add(id);
      await this.deps.packer.add(id, type, this.deps.codec.encode(plain), plain.length);
    }
    return id;
  }
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
