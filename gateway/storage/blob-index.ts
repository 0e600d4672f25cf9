import { open, mkdir, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
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
  lines: Line[];
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

  /** The ids of every indexed pack. */
  async packs(): Promise<Set<string>> {
    return new Set((await this.load()).map((l) => l.pack));
  }

  /** Appends a pack's blobs unless the pack is indexed already; returns the generation. */
  async add(pack: string, blobs: Omit<IndexedBlob, 'pack'>[]): Promise<number> {
    return this.serialised(async () => {
      const lines = await this.load();
      if (lines.some((l) => l.pack === pack)) return lines.length;
      const line: Line = { g: lines.length + 1, pack, blobs: blobs.map((b) => [b.id, b.type, b.offset, b.length, b.plainLength]) };
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
    const size = (await stat(this.file).catch(() => null))?.size ?? 0;
    const known = cache.get(this.file);
    if (known && known.size === size) return known.lines;
    const from = known && known.size < size ? known.size : 0;
    const lines = from === 0 ? [] : [...(known?.lines ?? [])];
    lines.push(...(await readLines(this.file, from, size)));
    cache.set(this.file, { size, lines });
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
        const parsed = Line.safeParse(JSON.parse(t));
        if (!parsed.success) throw new KuraError('conflict', 'the blob index is damaged: rebuild it from the packs');
        return parsed.data;
      });
  } finally {
    await fh.close();
  }
}
