import { z } from 'zod';
import type { BlobType } from './blob.js';
import { MAX_BLOB_SIZE } from './blob.js';
import { FormatError } from './errors.js';
import { jsonBytes } from './json.js';
import { count, decodeJson, hex64 } from './schema.js';

/** One blob of a pack, as its trailer lists it. */
export interface PackEntry {
  id: string;
  type: BlobType;
  /** Offset of the stored blob from the start of the pack. */
  offset: number;
  /** Stored length (after compression and encryption). */
  length: number;
  /** Plaintext length. */
  plainLength: number;
}

/** The fixed parts of a pack (README, "Packs"). */
export const PACK_MAGIC = Buffer.from('KURAPACK', 'ascii');
export const PACK_END_MAGIC = Buffer.from('KURAEND1', 'ascii');
export const PACK_VERSION = 1;
export const PACK_HEADER_SIZE = PACK_MAGIC.length + 1;
export const PACK_FOOTER_SIZE = 4 + PACK_END_MAGIC.length;

/** Limits that keep a hostile pack from costing a reader much memory. */
export const MAX_PACK_SIZE = 128 * 1024 * 1024;
export const MAX_TRAILER_SIZE = 16 * 1024 * 1024;
export const MAX_PACK_ENTRIES = 200_000;

interface TrailerJson {
  v: 1;
  blobs: { id: string; t: 'd' | 't'; o: number; l: number; u: number }[];
}

/**
 * Built on first use: the agent's worker threads write packs but never read trailers, and so never
 * load zod.
 */
let cachedSchema: z.ZodType<TrailerJson> | undefined;
const trailerSchema = (): z.ZodType<TrailerJson> =>
  (cachedSchema ??= z.strictObject({
    v: z.literal(1),
    blobs: z
      .array(
        z.strictObject({
          id: hex64,
          t: z.enum(['d', 't']),
          o: count,
          l: count.min(1),
          u: count.max(MAX_BLOB_SIZE),
        }),
      )
      .min(1, 'a pack holds at least one blob')
      .max(MAX_PACK_ENTRIES),
  }));

/** The trailer's bytes for entries (in pack order). */
export function encodeTrailer(entries: readonly PackEntry[]): Buffer {
  const blobs = entries.map((e) => ({ id: e.id, t: e.type === 'tree' ? 't' : 'd', o: e.offset, l: e.length, u: e.plainLength }));
  return jsonBytes({ v: 1, blobs });
}

/** Checks the 9-byte header. */
export function checkHeader(header: Buffer): void {
  if (header.length !== PACK_HEADER_SIZE || !header.subarray(0, PACK_MAGIC.length).equals(PACK_MAGIC)) {
    throw new FormatError('bad-pack', 'this is not a Kura pack: it does not start with "KURAPACK"');
  }
  const version = header[PACK_MAGIC.length];
  if (version !== PACK_VERSION)
    throw new FormatError('bad-pack', `the pack has format version ${String(version)}; this Kura reads version 1`);
}

/** Checks the 12-byte footer of a pack of totalSize bytes; returns where the trailer starts and its length. */
export function locateTrailer(footer: Buffer, totalSize: number): { start: number; length: number } {
  if (footer.length !== PACK_FOOTER_SIZE || !footer.subarray(4).equals(PACK_END_MAGIC)) {
    throw new FormatError('bad-pack', 'the pack does not end with "KURAEND1": it is truncated or not a Kura pack');
  }
  const length = footer.readUInt32LE(0);
  const room = totalSize - PACK_HEADER_SIZE - PACK_FOOTER_SIZE;
  if (length > MAX_TRAILER_SIZE)
    throw new FormatError('bad-pack', `the pack's trailer claims ${length} bytes, more than the 16 MiB allowed`);
  if (length < 2 || length > room)
    throw new FormatError('bad-pack', `the pack's trailer claims ${length} bytes, which do not fit in the pack`);
  return { start: totalSize - PACK_FOOTER_SIZE - length, length };
}

/**
 * The trailer's entries, checked against the blob region [PACK_HEADER_SIZE, blobEnd): blobs back to
 * back in trailer order, covering the region exactly, with unique ids.
 */
export function decodeTrailer(trailer: Buffer, blobEnd: number): PackEntry[] {
  const parsed = decodeJson(trailerSchema(), trailer, 'bad-pack', "the pack's trailer");
  const entries = parsed.blobs.map((b): PackEntry => ({
    id: b.id,
    type: b.t === 't' ? 'tree' : 'data',
    offset: b.o,
    length: b.l,
    plainLength: b.u,
  }));
  checkLayout(entries, blobEnd);
  return entries;
}

function checkLayout(entries: readonly PackEntry[], blobEnd: number): void {
  const seen = new Set<string>();
  let next = PACK_HEADER_SIZE;
  for (const [i, e] of entries.entries()) {
    const where = `the pack's entry ${i} (blob ${e.id})`;
    if (e.offset < next) throw new FormatError('bad-pack', `${where} overlaps the header or the blob before it`);
    if (e.offset > next) throw new FormatError('bad-pack', `${where} leaves unlisted bytes before it`);
    if (e.offset + e.length > blobEnd) throw new FormatError('bad-pack', `${where} runs past the blob region into the trailer`);
    if (seen.has(e.id)) throw new FormatError('bad-pack', `${where} repeats a blob id already in the pack`);
    seen.add(e.id);
    next = e.offset + e.length;
  }
  if (next !== blobEnd) throw new FormatError('bad-pack', 'the pack holds unlisted bytes between its last blob and its trailer');
}
