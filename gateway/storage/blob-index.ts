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

interface Loaded {
  size: number;
  /** The file's inode: a replaced index (replace(), from another process too) is read again whatever its size. */
  ino: number;
  lines: Line[];
}

/** The index file's name in an area's meta folder (AreaDirs.meta). */
export const INDEX_FILE_NAME = 'index.ndjson';

/** One pack's blobs, as the index holds them. */
export interface IndexedPack {
  pack: string;
  blobs: Omit<IndexedBlob, 'pack'>[];
}

const chains = new Map<string, Promise<unknown>>();
const cache = new Map<string, Loaded>();

/**
 * One user's blob index: an append-only file with one line per stored pack, numbered by a generation
 * that only grows, so an agent asks for what was added since the generation it last saw. Appends are
 * fsynced before the pack's PUT is answered; the index can always be rebuilt from the packs' trailers.
 */
export class BlobIndex {
  constructor(private readonly file: string) {}

  /** Every blob added after `generation`, and the current generation. */
  async since(generation: number): Promise<{ generation: number; entries: IndexedBlob[] }> {
    const lines = await this.load();
    const entries = lines.filter((l) => l.g > generation).flatMap(expand);
    return { generation: lines.length, entries };
  }

  /**
   * Every indexed pack with its blobs, in index order (a pack indexed twice appears twice).
   * Throws KuraError('conflict') when the file is damaged.
   */
  async list(): Promise<IndexedPack[]> {
    return (await this.load()).map((l) => ({ pack: l.pack, blobs: expand(l).map(({ pack: _pack, ...b }) => b) }));
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
    await this.serialised(async () => {
      await mkdir(dirname(this.file), { recursive: true });
      const tmp = join(dirname(this.file), `.${INDEX_FILE_NAME}.${process.pid}.tmp`);
      const text = packs.map((p, i) => JSON.stringify(toLine(i + 1, p.pack, p.blobs)) + '\n').join('');
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
    });
  }

  /** The ids of every indexed pack. */
  async packs(): Promise<Set<string>> {
    return new Set((await this.load()).map((l) => l.pack));
  }

  /** Appends a pack's blobs unless the pack is indexed already; returns the generation. */
  async add(pack: string, blobs: Omit<IndexedBlob, 'pack'>[]): Promise<number> {
    return this.serialised(async () => {
      const lines = await this.load();
      if (lines.some((l) => l.pack === pack)) return lines.length;
      const line = toLine(lines.length + 1, pack, blobs);
      await mkdir(dirname(this.file), { recursive: true });
      const fh = await open(this.file, 'a');
      try {
        await fh.write(JSON.stringify(line) + '\n');
        await fh.sync();
      } finally {
        await fh.close();
      }
      return line.g;
    });
  }

  private async load(): Promise<Line[]> {
    const st = await stat(this.file).catch(() => null);
    const size = st?.size ?? 0;
    const ino = st?.ino ?? 0;
    const known = cache.get(this.file)?.ino === ino ? cache.get(this.file) : undefined;
    if (known && known.size === size) return known.lines;
    const from = known && known.size < size ? known.size : 0;
    const lines = from === 0 ? [] : [...(known?.lines ?? [])];
    lines.push(...(await readLines(this.file, from, size)));
    cache.set(this.file, { size, ino, lines });
    return lines;
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

function expand(l: Line): IndexedBlob[] {
  return l.blobs.map(([id, type, offset, length, plainLength]) => ({ id, pack: l.pack, type, offset, length, plainLength }));
}

async function readLines(file: string, from: number, to: number): Promise<Line[]> {
  if (to <= from) return [];
  const fh = await open(file, 'r');
  try {
    const buf = Buffer.alloc(to - from);
    await fh.read(buf, 0, buf.length, from);
    return buf
      .toString('utf8')
      .split('\n')
      .filter((t) => t.trim() !== '')
      .map((t) => {
        const parsed = Line.safeParse(parseJson(t));
        if (!parsed.success) throw new KuraError('conflict', 'the blob index is damaged: rebuild it from the packs');
        return parsed.data;
      });
  } finally {
    await fh.close();
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
