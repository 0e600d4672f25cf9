import { createHash } from 'node:crypto';
import type { BlobType } from './blob.js';
import { MAX_BLOB_SIZE } from './blob.js';
import { FormatError } from './errors.js';
import { HEX64, sha256Hex } from './json.js';
import {
  checkHeader,
  decodeTrailer,
  encodeTrailer,
  locateTrailer,
  MAX_PACK_ENTRIES,
  MAX_PACK_SIZE,
  MAX_TRAILER_SIZE,
  PACK_END_MAGIC,
  PACK_FOOTER_SIZE,
  PACK_HEADER_SIZE,
  PACK_MAGIC,
  PACK_VERSION,
  type PackEntry,
} from './pack-trailer.js';

export { MAX_PACK_ENTRIES, MAX_PACK_SIZE, MAX_TRAILER_SIZE, PACK_HEADER_SIZE, type PackEntry };

/** Upper bound of one trailer entry's JSON, comma included: ids are 64 hex, offsets ≤ 9 digits. */
const ENTRY_JSON_MAX = 128;
const TRAILER_BASE = Buffer.byteLength('{"v":1,"blobs":[]}');
const HEADER = Buffer.concat([PACK_MAGIC, Buffer.from([PACK_VERSION])]);

/**
 * Builds one pack in memory (packs are normally ≤ 64 MiB). Add stored blobs, then finish() once.
 * add() throws FormatError('bad-pack') for a bad id, a repeated id, or a blob that does not fit;
 * canAdd() tells beforehand.
 */
export class PackBuilder {
  private readonly parts: Buffer[] = [HEADER];
  private readonly entries: PackEntry[] = [];
  private readonly ids = new Set<string>();
  private offset = PACK_HEADER_SIZE;
  private finished = false;

  /** Bytes of the pack so far, header and blobs, without the trailer and footer. */
  get size(): number {
    return this.offset;
  }

  /** Blobs added so far. */
  get count(): number {
    return this.entries.length;
  }

  /** Whether a blob of storedLength bytes still fits within the pack limits. */
  canAdd(storedLength: number): boolean {
    return !this.finished && fits(this.entries.length, this.offset, storedLength, MAX_PACK_SIZE);
  }

  add(id: string, type: BlobType, stored: Buffer, plainLength: number): void {
    checkBlob(id, stored.length, plainLength, this.ids);
    if (!this.canAdd(stored.length)) throw new FormatError('bad-pack', this.finished ? 'the pack is finished' : 'the pack is full');
    this.entries.push({ id, type, offset: this.offset, length: stored.length, plainLength });
    this.ids.add(id);
    this.parts.push(stored);
    this.offset += stored.length;
  }

  /** The whole pack and its id (SHA-256 hex of its bytes). The builder cannot be used afterwards. */
  finish(): { id: string; bytes: Buffer; entries: PackEntry[] } {
    const ending = packEnding(this.entries, this.finished);
    this.finished = true;
    const bytes = Buffer.concat([...this.parts, ...ending]);
    this.parts.length = 0; // the blobs now live in `bytes`; let the copies go
    return { id: packIdOf(bytes), bytes, entries: [...this.entries] };
  }
}

/**
 * Builds one pack straight into a buffer the caller owns and reuses (the agent's readers hand their
 * pack buffers to the uploader and get them back), hashing as blobs arrive: no copy at the end and
 * no fresh memory per pack. The same layout and checks as PackBuilder; a pack never outgrows buf.
 */
export class PackWriter {
  private readonly entries: PackEntry[] = [];
  private readonly ids = new Set<string>();
  private readonly hash = createHash('sha256');
  private offset = PACK_HEADER_SIZE;
  private finished = false;

  constructor(private readonly buf: Buffer) {
    if (buf.length < PACK_HEADER_SIZE + PACK_FOOTER_SIZE + TRAILER_BASE + ENTRY_JSON_MAX + 1) {
      throw new FormatError('bad-pack', 'the buffer is too small for a pack');
    }
    HEADER.copy(buf, 0);
    this.hash.update(HEADER);
  }

  get size(): number {
    return this.offset;
  }

  get count(): number {
    return this.entries.length;
  }

  canAdd(storedLength: number): boolean {
    return !this.finished && fits(this.entries.length, this.offset, storedLength, Math.min(MAX_PACK_SIZE, this.buf.length));
  }

  add(id: string, type: BlobType, stored: Uint8Array, plainLength: number): void {
    this.addWritten(id, type, { length: stored.length, writeTo: (dest, at) => dest.set(stored, at) }, plainLength);
  }

  /** Adds a blob that writes itself into the pack (BlobCodec.prepare): no stored copy is made. */
  addWritten(id: string, type: BlobType, blob: { length: number; writeTo(dest: Buffer, at: number): void }, plainLength: number): void {
    checkBlob(id, blob.length, plainLength, this.ids);
    if (!this.canAdd(blob.length)) throw new FormatError('bad-pack', this.finished ? 'the pack is finished' : 'the pack is full');
    blob.writeTo(this.buf, this.offset);
    this.hash.update(this.buf.subarray(this.offset, this.offset + blob.length));
    this.entries.push({ id, type, offset: this.offset, length: blob.length, plainLength });
    this.ids.add(id);
    this.offset += blob.length;
  }

  /** Writes the trailer and footer; the pack is buf[0, length). The writer cannot be used afterwards. */
  finish(): { id: string; length: number; entries: PackEntry[] } {
    const ending = packEnding(this.entries, this.finished);
    this.finished = true;
    for (const part of ending) {
      this.buf.set(part, this.offset);
      this.hash.update(part);
      this.offset += part.length;
    }
    return { id: this.hash.digest('hex'), length: this.offset, entries: this.entries };
  }
}

/** Whether one more blob keeps a pack of `count` blobs and `offset` bytes, trailer and footer included, within `limit` bytes and the entry limits. */
function fits(count: number, offset: number, storedLength: number, limit: number): boolean {
  const trailer = TRAILER_BASE + (count + 1) * ENTRY_JSON_MAX;
  return count < MAX_PACK_ENTRIES && trailer <= MAX_TRAILER_SIZE && offset + storedLength + trailer + PACK_FOOTER_SIZE <= limit;
}

/** What ends a pack of these entries: the trailer, then the footer (its length and the end magic). */
function packEnding(entries: readonly PackEntry[], finished: boolean): [Buffer, Buffer] {
  if (finished) throw new FormatError('bad-pack', 'the pack is finished');
  if (entries.length === 0) throw new FormatError('bad-pack', 'a pack holds at least one blob');
  const trailer = encodeTrailer(entries);
  const footer = Buffer.alloc(PACK_FOOTER_SIZE);
  footer.writeUInt32LE(trailer.length);
  PACK_END_MAGIC.copy(footer, 4);
  return [trailer, footer];
}

/** The checks every added blob passes (PackBuilder and PackWriter). */
function checkBlob(id: string, storedLength: number, plainLength: number, ids: Set<string>): void {
  if (!HEX64.test(id)) throw new FormatError('bad-pack', `"${id}" is not a blob id (64 lowercase hex)`);
  if (ids.has(id)) throw new FormatError('bad-pack', `blob ${id} is already in this pack`);
  if (storedLength === 0) throw new FormatError('bad-pack', `blob ${id} has no stored bytes`);
  if (!Number.isSafeInteger(plainLength) || plainLength < 0 || plainLength > MAX_BLOB_SIZE) {
    throw new FormatError('bad-pack', `blob ${id} has an impossible plain length ${plainLength}`);
  }
}

/** A pack's id: SHA-256 hex of all its bytes. */
export function packIdOf(bytes: Uint8Array): string {
  return sha256Hex(bytes);
}

/**
 * The blobs of a pack of totalSize bytes, read through readAt with three small reads (header,
 * footer, trailer) and never the blobs. Throws FormatError('bad-pack') when the pack's magic,
 * version, trailer or layout is wrong (README, "Packs": reader rules).
 */
export async function readPackTrailer(
  totalSize: number,
  readAt: (offset: number, length: number) => Promise<Buffer>,
): Promise<PackEntry[]> {
  checkTotalSize(totalSize);
  const read = async (offset: number, length: number) => exactly(await readAt(offset, length), length);
  const [header, footer] = await Promise.all([read(0, PACK_HEADER_SIZE), read(totalSize - PACK_FOOTER_SIZE, PACK_FOOTER_SIZE)]);
  checkHeader(header);
  const trailer = locateTrailer(footer, totalSize);
  return decodeTrailer(await read(trailer.start, trailer.length), trailer.start);
}

/** The blobs of a whole pack held in memory; the same checks as readPackTrailer. */
export function parsePack(bytes: Buffer): { entries: PackEntry[] } {
  checkTotalSize(bytes.length);
  checkHeader(bytes.subarray(0, PACK_HEADER_SIZE));
  const trailer = locateTrailer(bytes.subarray(bytes.length - PACK_FOOTER_SIZE), bytes.length);
  return { entries: decodeTrailer(bytes.subarray(trailer.start, trailer.start + trailer.length), trailer.start) };
}

function checkTotalSize(totalSize: number): void {
  const smallest = PACK_HEADER_SIZE + 1 + 2 + PACK_FOOTER_SIZE;
  if (!Number.isSafeInteger(totalSize) || totalSize < smallest) {
    throw new FormatError('bad-pack', `a pack of ${totalSize} bytes is too small to be a Kura pack`);
  }
  if (totalSize > MAX_PACK_SIZE) throw new FormatError('bad-pack', `a pack holds at most ${MAX_PACK_SIZE} bytes, not ${totalSize}`);
}

function exactly(buf: Buffer, length: number): Buffer {
  if (buf.length !== length)
    throw new FormatError('bad-pack', `the pack is shorter than its size says (read ${buf.length} of ${length} bytes)`);
  return buf;
}
