import { z } from 'zod';
import { MAX_BLOB_SIZE, type BlobType } from './blob.js';
import { isCount, isHex64, isPlainRecord, jsonBytes, parseJson } from './json.js';
import { count, hex64, validateQuick } from './schema.js';
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
  /**
   * Changes whenever packs leave the index (prune, a rebuild): a reader whose copy was taken under
   * another epoch must read the whole index again, since entries it holds may be gone.
   */
  epoch: string;
  entries: IndexEntry[];
}

/** An index epoch: 1 to 32 lowercase hex digits ("0" for an index that never lost a pack). */
export const INDEX_EPOCH = /^[0-9a-f]{1,32}$/;

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
  epoch: z.string().regex(INDEX_EPOCH),
  entries: z.array(EntrySchema),
});

const ENTRY_KEYS = ['id', 'pack', 'type', 'offset', 'length', 'plainLength'] as const;
const ENTRY_KEY_SET = new Set<string>(ENTRY_KEYS);
const PAGE_KEYS = ['kura', 'v', 'generation', 'epoch', 'entries'] as const;

/** The schema's rules by hand (see validateQuick): an index holds up to millions of entries. */
function quickEntry(value: unknown): boolean {
  if (!isPlainRecord(value, ENTRY_KEYS, ENTRY_KEY_SET)) return false;
  const { id, pack, type, offset, length, plainLength } = value;
  return (
    isHex64(id) &&
    isHex64(pack) &&
    (type === 'd' || type === 't') &&
    isCount(offset) &&
    offset >= PACK_HEADER_SIZE &&
    isCount(length) &&
    length >= 1 &&
    isCount(plainLength) &&
    plainLength <= MAX_BLOB_SIZE
  );
}

function quickPage(value: unknown): boolean {
  if (!isPlainRecord(value, PAGE_KEYS, new Set(PAGE_KEYS))) return false;
  return (
    value.kura === 'index' &&
    value.v === 1 &&
    isCount(value.generation) &&
    typeof value.epoch === 'string' &&
    INDEX_EPOCH.test(value.epoch) &&
    Array.isArray(value.entries) &&
    value.entries.every(quickEntry)
  );
}

/** The page's bytes; throws FormatError('bad-record') for an invalid entry, so none is ever sent. */
export function encodeIndex(page: IndexPage): Buffer {
  const record = { kura: 'index', v: 1, generation: page.generation, epoch: page.epoch, entries: page.entries.map(canonicalEntry) };
  validateQuick(quickPage, PageSchema, record, 'bad-record', 'the index');
  return jsonBytes(record);
}

/** Reads an index page; throws FormatError('bad-record') when malformed. */
export function decodeIndex(bytes: Uint8Array): IndexPage {
  const page = validateQuick(quickPage, PageSchema, parseJson(bytes, 'bad-record', 'the index'), 'bad-record', 'the index');
  return { generation: page.generation, epoch: page.epoch, entries: page.entries };
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
