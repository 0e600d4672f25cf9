import { randomBytes } from 'node:crypto';
import { open, mkdir, rename, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { z } from 'zod';
import type { IndexEntry } from '../../format/index.js';
import { KuraError } from '../errors.js';

/** Where one blob lives: which pack, at which byte range, and its type (format/index-entry.ts). */
export type IndexedBlob = IndexEntry;

const Line = z.object({
  g: z.number().int().positive(),
  pack: z.string().regex(/^[0-9a-f]{64}$/),
  blobs: z.array(z.tuple([z.string(), z.enum(['d', 't']), z.number(), z.number(), z.number()])),
});
type Line = z.infer<typeof Line>;

const Epoch = z.string().regex(/^[0-9a-f]{1,32}$/);
/** The first line of a rewritten index: its epoch (format/index-entry.ts). */
const Header = z.strictObject({ epoch: Epoch });
/** A pack taken out of the index (prune moved it to the trash), which starts a new epoch. */
const Drop = z.strictObject({ drop: z.string().regex(/^[0-9a-f]{64}$/), epoch: Epoch });

type Item = { header: string } | { line: Line } | { drop: string; epoch: string };

interface Loaded {
  size: number;
  /**
   * The file's inode and birth time: a replaced index (replace(), from another process too) is read
   * again whatever its size, even when the new file got the inode number of a deleted one.
   */
  identity: string;
  /** The file's last bytes (up to TAIL_BYTES): only a file that still holds them there grew by appends. */
  tail: Buffer;
  epoch: string;
  /** The packs indexed now, in index order. */
  lines: Line[];
  /** The highest generation written (dropped packs' lines count: generations never go back within an epoch). */
  top: number;
  /** Lines of dropped packs still in the file (remove() compacts the file when they outnumber the rest). */
  dead: number;
}

/** The index file's name in an area's meta folder (AreaDirs.meta). */
export const INDEX_FILE_NAME = 'index.ndjson';

/** One pack's blobs, as the index holds them. */
export interface IndexedPack {
  pack: string;
  blobs: Omit<IndexedBlob, 'pack'>[];
}

/** How many of the file's last bytes tell an append from a rewrite: a blob id's 64 hex digits fit. */
const TAIL_BYTES = 96;

const chains = new Map<string, Promise<unknown>>();
const cache = new Map<string, Loaded>();

/**
 * One user's blob index: an append-only file with one line per stored pack, numbered by a generation
 * that only grows, so an agent asks for what was added since the generation it last saw. Appends are
 * fsynced before the pack's PUT is answered; the index can always be rebuilt from the packs' trailers.
 * When packs leave it a new epoch starts, so an agent holding a copy of another epoch reads it all
 * again: remove() appends one `drop` line per pack (a prune of many packs costs one line each, not a
 * rewrite each) and compacts the file when dropped lines outnumber the live ones; replace() rewrites
 * it with the epoch as its first line, numbering the packs again from 1.
 */
export class BlobIndex {
  constructor(private readonly file: string) {}

  /** Every blob added after `generation`, and the current generation. */
  async since(generation: number, epoch?: string): Promise<{ generation: number; epoch: string; entries: IndexedBlob[] }> {
    const loaded = await this.loadAll();
    const from = epoch === undefined || epoch === loaded.epoch ? generation : 0;
    const entries = loaded.lines.filter((l) => l.g > from).flatMap(expand);
    return { generation: loaded.top, epoch: loaded.epoch, entries };
  }

  /**
   * Every indexed pack with its blobs, in index order (a pack indexed twice appears twice).
   * Throws KuraError('conflict') when the file is damaged.
   */
  async list(): Promise<IndexedPack[]> {
    return (await this.load()).map(toPack);
  }

  /** Whether the index file exists at all (a missing one reads as empty). */
  async exists(): Promise<boolean> {
    return (await stat(this.file).catch(() => null)) !== null;
  }

  /**
   * Replaces the whole index with packs, numbered 1… in the given order: written to a temp file
   * beside it, fsynced, then renamed over it, so a reader sees the old index or the new one, never a
   * mix. The generation becomes packs.length; an agent whose cached generation is higher reads the
   * index again from the start (agent/repository.ts).
   */
  async replace(packs: IndexedPack[]): Promise<void> {
    await this.serialised(() => this.rewrite(packs));
  }

  /**
   * Takes packs out of the index (prune moves them to the trash) under a new epoch; returns those
   * that were indexed. The pack files are not touched.
   */
  async remove(packIds: ReadonlySet<string>): Promise<IndexedPack[]> {
    return this.serialised(async () => {
      const loaded = await this.loadAll();
      const gone = loaded.lines.filter((l) => packIds.has(l.pack));
      if (gone.length === 0) return [];
      const live = loaded.lines.filter((l) => !packIds.has(l.pack));
      if (loaded.dead + gone.length > live.length) await this.rewrite(live.map(toPack));
      else {
        const epoch = newEpoch();
        await this.append([...new Set(gone.map((l) => l.pack))].map((drop) => JSON.stringify({ drop, epoch }) + '\n').join(''));
      }
      return gone.map(toPack);
    });
  }

  private async rewrite(packs: IndexedPack[]): Promise<void> {
    await mkdir(dirname(this.file), { recursive: true });
    const tmp = join(dirname(this.file), `.${INDEX_FILE_NAME}.${process.pid}.tmp`);
    const header = JSON.stringify({ epoch: newEpoch() }) + '\n';
    const text = header + packs.map((p, i) => JSON.stringify(toLine(i + 1, p.pack, p.blobs)) + '\n').join('');
    try {
      const fh = await open(tmp, 'w');
      try {
        await fh.write(text);
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(tmp, this.file);
    } finally {
      await rm(tmp, { force: true });
    }
    await syncDir(dirname(this.file));
    cache.delete(this.file);
  }

  /** The ids of every indexed pack. */
  async packs(): Promise<Set<string>> {
    return new Set((await this.load()).map((l) => l.pack));
  }

  /** Appends a pack's blobs unless the pack is indexed already; returns the generation. */
  async add(pack: string, blobs: Omit<IndexedBlob, 'pack'>[]): Promise<number> {
    return this.serialised(async () => {
      const { lines, top } = await this.loadAll();
      if (lines.some((l) => l.pack === pack)) return top;
      const line = toLine(top + 1, pack, blobs);
      await this.append(JSON.stringify(line) + '\n');
      return line.g;
    });
  }

  /** Appends text to the file and fsyncs it. */
  private async append(text: string): Promise<void> {
    await mkdir(dirname(this.file), { recursive: true });
    const fh = await open(this.file, 'a');
    try {
      await fh.write(text);
      await fh.sync();
    } finally {
      await fh.close();
    }
  }

  private async load(): Promise<Line[]> {
    return (await this.loadAll()).lines;
  }

  private async loadAll(): Promise<Loaded> {
    const st = await stat(this.file).catch(() => null);
    const size = st?.size ?? 0;
    const identity = st ? `${st.ino}:${st.birthtimeMs}` : '';
    const cached = cache.get(this.file);
    const known =
      cached && cached.identity === identity && cached.size <= size && (await holdsAt(this.file, cached.size, cached.tail))
        ? cached
        : undefined;
    if (known && known.size === size) return known;
    const from = known ? known.size : 0;
    const bytes = await readRange(this.file, from, size);
    const end = from + bytes.length;
    const loaded: Loaded = known
      ? { ...known, size: end, lines: [...known.lines] }
      : { size: end, identity, tail: Buffer.alloc(0), epoch: '0', lines: [], top: 0, dead: 0 };
    for (const item of parseItems(bytes, from)) {
      if ('header' in item) loaded.epoch = item.header;
      else if ('line' in item) {
        loaded.lines.push(item.line);
        loaded.top = Math.max(loaded.top, item.line.g);
      } else {
        const before = loaded.lines.length;
        loaded.lines = loaded.lines.filter((l) => l.pack !== item.drop);
        loaded.dead += before - loaded.lines.length;
        loaded.epoch = item.epoch;
      }
    }
    loaded.tail = Buffer.concat([loaded.tail, bytes]).subarray(-TAIL_BYTES);
    cache.set(this.file, loaded);
    return loaded;
  }

  private serialised<T>(fn: () => Promise<T>): Promise<T> {
    const next = (chains.get(this.file) ?? Promise.resolve()).then(fn);
    chains.set(
      this.file,
      next.catch(() => undefined),
    );
    return next;
  }
}

function toLine(g: number, pack: string, blobs: Omit<IndexedBlob, 'pack'>[]): Line {
  return { g, pack, blobs: blobs.map((b) => [b.id, b.type, b.offset, b.length, b.plainLength]) };
}

/** Makes a rename in dir durable (where the platform allows opening a folder). */
async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r').catch(() => null);
  if (!fh) return;
  try {
    await fh.sync().catch(() => undefined);
  } finally {
    await fh.close();
  }
}

function toPack(l: Line): IndexedPack {
  return { pack: l.pack, blobs: expand(l).map(({ pack: _pack, ...b }) => b) };
}

function expand(l: Line): IndexedBlob[] {
  return l.blobs.map(([id, type, offset, length, plainLength]) => ({ id, pack: l.pack, type, offset, length, plainLength }));
}

async function readRange(file: string, from: number, to: number): Promise<Buffer> {
  if (to <= from) return Buffer.alloc(0);
  const fh = await open(file, 'r');
  try {
    const buf = Buffer.alloc(to - from);
    const { bytesRead } = await fh.read(buf, 0, buf.length, from);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

/** Whether the file still holds tail just before offset `end`: else it was rewritten, not appended to. */
async function holdsAt(file: string, end: number, tail: Buffer): Promise<boolean> {
  if (tail.length === 0) return end === 0;
  return (await readRange(file, end - tail.length, end).catch(() => Buffer.alloc(0))).equals(tail);
}

/** The items of bytes read from offset `from` (a header only counts as the file's first line). */
function parseItems(bytes: Buffer, from: number): Item[] {
  const texts = bytes
    .toString('utf8')
    .split('\n')
    .filter((t) => t.trim() !== '');
  return texts.map((t, i): Item => {
    const value = parseJson(t);
    const line = Line.safeParse(value);
    if (line.success) return { line: line.data };
    const drop = Drop.safeParse(value);
    if (drop.success) return drop.data;
    const header = from === 0 && i === 0 ? Header.safeParse(value) : null;
    if (header?.success) return { header: header.data.epoch };
    throw new KuraError('conflict', 'the blob index is damaged: rebuild it from the packs');
  });
}

function newEpoch(): string {
  return randomBytes(8).toString('hex');
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
