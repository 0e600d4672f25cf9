import { createReadStream, createWriteStream, fdatasync, type ReadStream, type WriteStream } from 'node:fs';
import { lstat, mkdir, open, readdir, rename, rm, rmdir, unlink, copyFile, utimes } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { Transform, type Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { KuraError } from '../errors.js';
import { sendRange } from './send-range.js';
import { SpaceMeter, type SpaceGuard } from './space-meter.js';

export type EntryType = 'file' | 'collection';

export interface Entry {
  name: string;
  type: EntryType;
  size: number;
  mtime: Date;
  birthtime: Date;
  etag: string;
}

export type { SpaceGuard };

/** Optional steps of a write: see each bytes as it streams, check the whole before it becomes visible. */
export interface WriteHooks {
  observe?: (chunk: Buffer) => void;
  /** Runs on the complete, fsynced temp file; throwing refuses the write and leaves nothing behind. */
  verify?: (tmpPath: string, size: number) => Promise<void>;
  /** Creates missing parent folders first (for the agent's protocol area, never for /files/). */
  createParents?: boolean;
}

/** What a completed write did, for the caller's status code and accounting. */
export interface WriteResult {
  created: boolean;
  size: number;
}

/**
 * One user's plain file tree on the local disk. Paths are validated segments (see paths.ts); this
 * class never follows a symbolic link (one planted inside the area is invisible and unreachable) and
 * never makes a partial file visible: writes go to `tmpDir` on the same filesystem, are fsynced, then
 * renamed into place.
 */
export class FileArea {
  constructor(
    readonly root: string,
    private readonly tmpDir: string,
  ) {}

  /** Creates the root and temp folders and removes temp files left by a crash. */
  async prepare(): Promise<void> {
    await mkdir(this.root, { recursive: true });
    await rm(this.tmpDir, { recursive: true, force: true });
    await mkdir(this.tmpDir, { recursive: true });
  }

  /** The entry at segs, or null when nothing (or only a symlink) is there. */
  async stat(segs: readonly string[]): Promise<Entry | null> {
    const abs = await this.walk(segs);
    if (abs === null) return null;
    const st = await lstat(abs).catch(() => null);
    if (!st || (!st.isFile() && !st.isDirectory())) return null;
    return toEntry(segs[segs.length - 1] ?? '', st);
  }

  /** Children of a collection, without symlinks or special files. Throws not-found / not-a-collection. */
  async list(segs: readonly string[]): Promise<Entry[]> {
    const entry = await this.require(segs);
    if (entry.type !== 'collection') throw new KuraError('not-a-collection', 'not a collection');
    const abs = this.abs(segs);
    const names = await readdir(abs);
    const entries = await Promise.all(
      names.map(async (name) => {
        const st = await lstat(join(abs, name)).catch(() => null);
        return st && (st.isFile() || st.isDirectory()) ? toEntry(name.normalize('NFC'), st) : null;
      }),
    );
    return entries.filter((e): e is Entry => e !== null);
  }

  /** The names in a collection as they are on disk, in NFC (no stat of each); empty when it is missing. */
  async names(segs: readonly string[]): Promise<string[]> {
    const abs = await this.walk(segs);
    if (abs === null) return [];
    return (await readdir(abs).catch(() => [] as string[])).map((n) => n.normalize('NFC'));
  }

  /** Sets the modification time of the file or folder at segs (the access time is kept). Throws not-found. */
  async setModified(segs: readonly string[], mtime: Date): Promise<void> {
    const abs = await this.walk(segs);
    const st = abs === null ? null : await lstat(abs).catch(() => null);
    if (abs === null || !st) throw new KuraError('not-found', 'no such file or folder');
    await utimes(abs, st.atime, mtime);
  }

  /** The entry at segs; throws KuraError('not-found') when absent. */
  async require(segs: readonly string[]): Promise<Entry> {
    const entry = await this.stat(segs);
    if (!entry) throw new KuraError('not-found', 'no such file or folder');
    return entry;
  }

  /** A stream of the file's bytes from start to end inclusive. */
  openRead(segs: readonly string[], start?: number, end?: number): ReadStream {
    return createReadStream(this.abs(segs), { start, end, highWaterMark: 1 << 20 });
  }

  /** Writes the file's bytes from start to end inclusive into out (a response), without ending it: see send-range.ts. */
  sendRange(segs: readonly string[], start: number, end: number, out: Writable): Promise<void> {
    return sendRange(this.abs(segs), start, end, out);
  }

  /**
   * Streams body into a temp file, metering every byte against guard as it arrives (so a chunked body
   * is stopped the moment it crosses the quota), fsyncs, then renames over the target. On any failure
   * the temp file is removed, the reservation released, and the old version stays untouched.
   */
  async writeFile(segs: readonly string[], body: Readable, guard: SpaceGuard, hooks: WriteHooks = {}): Promise<WriteResult> {
    if (hooks.createParents) await this.makeParents(segs);
    await this.requireParentCollection(segs);
    const existing = await this.stat(segs);
    if (existing?.type === 'collection') throw new KuraError('conflict', 'a folder has that name');
    const tmp = join(this.tmpDir, `put-${randomBytes(12).toString('hex')}`);
    const meter = new SpaceMeter(guard, existing?.size ?? 0);
    let size = 0;
    const counter = new Transform({
      highWaterMark: 1 << 20,
      transform(chunk: Buffer, _enc, done) {
        meter.take(chunk.length).then(
          () => {
            size += chunk.length;
            hooks.observe?.(chunk);
            done(null, chunk);
          },
          (err: unknown) => done(err as Error),
        );
      },
    });
    try {
      const out = createWriteStream(tmp, { flags: 'wx', highWaterMark: 1 << 20 });
      const flusher = new Flusher(out);
      counter.on('data', (chunk: Buffer) => flusher.wrote(chunk.length));
      await pipeline(body, counter, out);
      await flusher.idle();
      await fsyncFile(tmp);
      await hooks.verify?.(tmp, size);
      await this.replace(segs, tmp);
    } catch (err) {
      await unlink(tmp).catch(() => undefined);
      await meter.cancel();
      throw err;
    }
    await meter.settle();
    return { created: !existing, size };
  }

  /** Creates a collection. Throws exists when something is there, conflict when the parent is missing. */
  async makeCollection(segs: readonly string[]): Promise<void> {
    await this.requireParentCollection(segs);
    if (await this.exists(segs)) throw new KuraError('exists', 'something with that name exists');
    await this.unlinkStray(segs);
    await mkdir(this.abs(segs));
  }

  /** Removes a file or a whole collection; returns the bytes freed. */
  async remove(segs: readonly string[]): Promise<number> {
    const entry = await this.require(segs);
    if (entry.type === 'file') {
      await unlink(this.abs(segs));
      return entry.size;
    }
    let freed = 0;
    for (const child of await this.list(segs)) freed += await this.remove([...segs, child.name]);
    for (const name of await readdir(this.abs(segs))) await this.unlinkStray([...segs, name]);
    await rmdir(this.abs(segs));
    return freed;
  }

  /** Total bytes of every file under segs (the recount). */
  async sizeOf(segs: readonly string[]): Promise<number> {
    const entry = await this.stat(segs);
    if (!entry) return 0;
    if (entry.type === 'file') return entry.size;
    let total = 0;
    for (const child of await this.list(segs)) total += await this.sizeOf([...segs, child.name]);
    return total;
  }

  /** Copies a file or tree to a place that does not exist yet; space is reserved up front. */
  async copy(from: readonly string[], to: readonly string[], guard: SpaceGuard): Promise<void> {
    const size = await this.sizeOf(from);
    await guard.reserve(size);
    try {
      await this.copyTree(from, to);
    } catch (err) {
      await this.remove(to).catch(() => 0);
      await guard.release(size);
      throw err;
    }
  }

  /** Renames a file or tree to a place that does not exist yet (same area, so space is unchanged). */
  async move(from: readonly string[], to: readonly string[], opts: { createParents?: boolean } = {}): Promise<void> {
    if (opts.createParents) await this.makeParents(to);
    else await this.requireParentCollection(to);
    await this.unlinkStray(to);
    await rename(this.abs(from), this.abs(to));
  }

  private async makeParents(segs: readonly string[]): Promise<void> {
    for (let i = 1; i < segs.length; i++) {
      const dir = segs.slice(0, i);
      const entry = await this.stat(dir);
      if (!entry) await mkdir(this.abs(dir)).catch((e: NodeJS.ErrnoException) => (e.code === 'EEXIST' ? undefined : Promise.reject(e)));
      else if (entry.type !== 'collection') throw new KuraError('conflict', 'a file is in the way');
    }
  }

  /** Throws conflict unless the parent of segs is an existing collection. */
  async requireParentCollection(segs: readonly string[]): Promise<void> {
    const parent = await this.stat(segs.slice(0, -1));
    if (parent?.type !== 'collection') {
      throw new KuraError('conflict', 'the parent folder does not exist');
    }
  }

  async exists(segs: readonly string[]): Promise<boolean> {
    return (await this.stat(segs)) !== null;
  }

  private async copyTree(from: readonly string[], to: readonly string[]): Promise<void> {
    const entry = await this.require(from);
    if (entry.type === 'file') {
      const tmp = join(this.tmpDir, `copy-${randomBytes(12).toString('hex')}`);
      try {
        await copyFile(this.abs(from), tmp);
        await fsyncFile(tmp);
        await this.replace(to, tmp);
      } catch (err) {
        // A copy cut short (a full disk) leaves no half file behind.
        await unlink(tmp).catch(() => undefined);
        throw err;
      }
      return;
    }
    await this.makeCollection(to);
    for (const child of await this.list(from)) {
      await this.copyTree([...from, child.name], [...to, child.name]);
    }
  }

  /**
   * Removes a symlink or special file at segs (something that was planted, never served): unlink
   * removes the link itself and never touches what it points to.
   */
  private async unlinkStray(segs: readonly string[]): Promise<void> {
    const st = await lstat(this.abs(segs)).catch(() => null);
    if (st && !st.isFile() && !st.isDirectory()) await unlink(this.abs(segs));
  }

  private async replace(segs: readonly string[], tmp: string): Promise<void> {
    await this.requireParentCollection(segs);
    await rename(tmp, this.abs(segs));
  }

  /** The absolute path of segs when no component of it is a symlink; null when one is or it is missing. */
  private async walk(segs: readonly string[]): Promise<string | null> {
    let abs = this.root;
    for (let i = 0; i < segs.length; i++) {
      abs = join(abs, segs[i] as string);
      const st = await lstat(abs).catch(() => null);
      if (!st || st.isSymbolicLink()) return null;
      if (i < segs.length - 1 && !st.isDirectory()) return null;
    }
    return abs;
  }

  private abs(segs: readonly string[]): string {
    return join(this.root, ...segs);
  }
}

/**
 * Starts an fdatasync every 32 MiB while a big upload streams in, so the disk writes overlap with
 * receiving and the final fsync (which makes the file durable before it becomes visible) is short.
 */
class Flusher {
  private pending = 0;
  private running: Promise<void> | null = null;

  constructor(private readonly out: WriteStream) {}

  wrote(bytes: number): void {
    this.pending += bytes;
    const fd = (this.out as WriteStream & { fd: number | null }).fd;
    if (this.pending < 32 << 20 || this.running || typeof fd !== 'number') return;
    this.pending = 0;
    this.running = new Promise<void>((resolve) => fdatasync(fd, () => resolve())).then(() => {
      this.running = null;
    });
  }

  async idle(): Promise<void> {
    await this.running;
  }
}

async function fsyncFile(path: string): Promise<void> {
  const fh = await open(path, 'r+');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

function toEntry(name: string, st: import('node:fs').Stats): Entry {
  const type: EntryType = st.isDirectory() ? 'collection' : 'file';
  const size = type === 'file' ? st.size : 0;
  const etag = `"${st.ino.toString(16)}-${size.toString(16)}-${Math.floor(st.mtimeMs).toString(16)}"`;
  return { name, type, size, mtime: st.mtime, birthtime: st.birthtime, etag };
}
