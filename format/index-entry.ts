import { z } from 'zod';
import { MAX_BLOB_SIZE, type BlobType } from './blob.js';
import { count, decodeJson, hex64, jsonBytes, validate } from './json.js';
import { PACK_HEADER_SIZE } from './pack-trailer.js';

/** Where one blob lives: which pack, which byte range; type 'd' data or 't' tree (as in trailers). */
export interface IndexEntry {
  id: string;
  pack: string;
  type: 'd' | 't';
  offset: number;
  length: number;
  plainLength: number;
}

/** The answer to GET /.kura/index?since=G: blobs added after generation G, and the current generation. */
export interface IndexPage {
  generation: number;
  entries: IndexEntry[];
}

const EntrySchema = z.strictObject({
  id: hex64,
  pack: hex64,
  type: z.enum(['d', 't']),
  offset: count.min(PACK_HEADER_SIZE),
  length: count.min(1),
  plainLength: count.max(MAX_BLOB_SIZE),
});

const PageSchema = z.strictObject({
  kura: z.literal('index'),
  v: z.literal(1),
  generation: count,
  entries: z.array(EntrySchema),
});

/** The page's bytes; throws FormatError('bad-record') for an invalid entry, so none is ever sent. */
export function encodeIndex(page: IndexPage): Buffer {
  const record = { kura: 'index', v: 1, generation: page.generation, entries: page.entries.map(canonicalEntry) };
  validate(PageSchema, record, 'bad-record', 'the index');
  return jsonBytes(record);
}

/** Reads an index page; throws FormatError('bad-record') when malformed. */
export function decodeIndex(bytes: Uint8Array): IndexPage {
  const page = decodeJson(PageSchema, bytes, 'bad-record', 'the index');
  return { generation: page.generation, entries: page.entries };
}

/** 'data' → 'd', 'tree' → 't': the one-letter codes of trailers and the index. */
export function blobTypeToCode(type: BlobType): 'd' | 't' {
  return type === 'tree' ? 't' : 'd';
}

export function blobTypeFromCode(code: 'd' | 't'): BlobType {
  return code === 't' ? 'tree' : 'data';
}

function canonicalEntry(e: IndexEntry): IndexEntry {
  return { id: e.id, pack: e.pack, type: e.type, offset: e.offset, length: e.length, plainLength: e.plainLength };
}
