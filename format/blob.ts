import { createHash, createHmac } from 'node:crypto';
import { compressInScratch, decompressFrame } from './compression.js';
import { FormatError } from './errors.js';
import type { MasterKeys } from './keys.js';
import { BOX_OVERHEAD, open, sealInto } from './sealed-box.js';

/** A codec as plain data, for worker threads (BlobCodec.spec). */
export interface CodecSpec {
  encKey: Uint8Array | null;
  idKey: Uint8Array | null;
  boundIds: boolean;
}

/** A chunk of a file ('data') or one directory listing ('tree'). */
export type BlobType = 'data' | 'tree';

/** A blob's plaintext is at most 128 MiB (a chunk is ≤ 16 MiB; the rest is room for huge directories). */
export const MAX_BLOB_SIZE = 128 * 1024 * 1024;

const FLAG_RAW = 0;
const FLAG_ZSTD = 1;
const RAW = Buffer.from([FLAG_RAW]);
const ZSTD = Buffer.from([FLAG_ZSTD]);

/**
 * Blob ids and stored bytes for one repository (README, "Blobs"). With keys, ids are
 * HMAC-SHA-256(idKey) and stored bytes are AES-256-GCM sealed under encKey; with null (a plaintext
 * repository), ids are SHA-256 and stored bytes are the flagged, maybe compressed, plaintext.
 *
 * boundIds (config version 2, the default): an encrypted box takes the blob's id as associated data.
 * A box that opens under an id was sealed for that id by a holder of the keys, which is the check
 * decode needs: it skips the second pass (HMAC over the plaintext) that version 1 boxes, and
 * decodeVerified, still make.
 */
export class BlobCodec {
  constructor(
    private readonly keys: MasterKeys | null,
    readonly boundIds = true,
  ) {}

  get encrypted(): boolean {
    return this.keys !== null;
  }

  /** What a worker thread needs to make the same codec (BlobCodec.fromSpec): plain data, cloneable. */
  spec(): CodecSpec {
    return { encKey: this.keys?.encKey ?? null, idKey: this.keys?.idKey ?? null, boundIds: this.boundIds };
  }

  static fromSpec(spec: CodecSpec): BlobCodec {
    const { encKey, idKey } = spec;
    return new BlobCodec(encKey && idKey ? { encKey: Buffer.from(encKey), idKey: Buffer.from(idKey) } : null, spec.boundIds);
  }

  /** The blob id of plain: 64 hex. */
  id(plain: Uint8Array): string {
    const mac = this.keys ? createHmac('sha256', this.keys.idKey) : createHash('sha256');
    return mac.update(plain).digest('hex');
  }

  /**
   * The stored bytes of plain, whose id is `id` (computed when not given). Throws
   * FormatError('bad-blob') when plain exceeds MAX_BLOB_SIZE.
   */
  encode(plain: Buffer, id = this.id(plain)): Buffer {
    const blob = this.prepare(plain, id);
    const out = Buffer.allocUnsafe(blob.length);
    blob.writeTo(out, 0);
    return out;
  }

  /**
   * encode() in two steps, for writing straight into a pack buffer: the stored length first, then
   * writeTo(dest, at), which must run before anything else on this thread compresses (the frame
   * waits in a scratch buffer). Throws like encode().
   */
  prepare(plain: Buffer, id: string): { length: number; writeTo(dest: Buffer, at: number): void } {
    if (plain.length > MAX_BLOB_SIZE) throw new FormatError('bad-blob', `a blob holds at most ${MAX_BLOB_SIZE} bytes, not ${plain.length}`);
    const frame = compressInScratch(plain);
    const parts = frame ? [ZSTD, frame] : [RAW, plain];
    const inner = 1 + parts[1]!.length;
    const keys = this.keys;
    const aad = this.aadOf(id);
    return {
      length: keys ? inner + BOX_OVERHEAD : inner,
      writeTo(dest: Buffer, at: number): void {
        if (keys) sealInto(keys.encKey, parts, dest, at, aad);
        else {
          for (const p of parts) {
            dest.set(p, at);
            at += p.length;
          }
        }
      },
    };
  }

  /**
   * The plaintext of a stored blob, checked against its id (and plain length, when given).
   * Throws FormatError 'wrong-key' when the box does not open (wrong key or altered bytes),
   * 'bad-blob' when the bytes are malformed or do not hash to expectedId.
   */
  decode(stored: Buffer, expectedId: string, expectedPlainLength?: number): Buffer {
    return this.decodeWith(stored, expectedId, expectedPlainLength, false, false);
  }

  /** decode(), and the plaintext hashed against the id even when the box binds it (kura check --read-data). */
  decodeVerified(stored: Buffer, expectedId: string, expectedPlainLength?: number): Buffer {
    return this.decodeWith(stored, expectedId, expectedPlainLength, false, true);
  }

  /**
   * decode(), but a compressed blob's plaintext is in a buffer that the next decodeTransient on this
   * thread overwrites: for a caller that writes it out at once (a restore), it saves fresh memory.
   */
  decodeTransient(stored: Buffer, expectedId: string, expectedPlainLength?: number): Buffer {
    return this.decodeWith(stored, expectedId, expectedPlainLength, true, false);
  }

  private decodeWith(
    stored: Buffer,
    expectedId: string,
    expectedPlainLength: number | undefined,
    transient: boolean,
    rehash: boolean,
  ): Buffer {
    const plain = innerToPlain(this.openBox(stored, expectedId), expectedId, expectedPlainLength, transient);
    const bound = this.keys !== null && this.boundIds;
    if ((rehash || !bound) && this.id(plain) !== expectedId) {
      throw new FormatError('bad-blob', `blob ${expectedId}: the content does not match its id`);
    }
    return plain;
  }

  private openBox(stored: Buffer, id: string): Buffer {
    if (!this.keys) return stored;
    const inner = open(this.keys.encKey, stored, this.aadOf(id));
    if (!inner) {
      const why = this.boundIds
        ? 'a wrong key, or the blob was altered or is not the blob of this id'
        : 'a wrong key, or the blob was altered';
      throw new FormatError('wrong-key', `blob ${id} does not open with this key (${why})`);
    }
    return inner;
  }

  /** The associated data of id's box: its 32 bytes when boxes bind ids, else none. */
  private aadOf(id: string): Buffer | undefined {
    if (!this.keys || !this.boundIds) return undefined;
    if (!/^[0-9a-f]{64}$/.test(id))
      throw new FormatError('bad-blob', `a blob id is 64 lowercase hex, not ${JSON.stringify(id.slice(0, 80))}`);
    return Buffer.from(id, 'hex');
  }
}

const plainCodec = new BlobCodec(null);

/**
 * For the gateway, which holds no keys: checks a blob of a plaintext repository (flag, zstd frame,
 * SHA-256 against id) and returns its plaintext. Throws FormatError('bad-blob').
 */
export function verifyPlainBlob(stored: Buffer, id: string, plainLength?: number): Buffer {
  return plainCodec.decode(stored, id, plainLength);
}

function innerToPlain(inner: Buffer, id: string, expectedLength: number | undefined, transient: boolean): Buffer {
  if (inner.length === 0) throw new FormatError('bad-blob', `blob ${id} is empty: it lacks even its flag byte`);
  const flag = inner[0];
  const payload = inner.subarray(1);
  if (flag === FLAG_ZSTD) return decompressFrame(payload, `blob ${id}`, MAX_BLOB_SIZE, expectedLength, transient);
  if (flag !== FLAG_RAW) throw new FormatError('bad-blob', `blob ${id} has an unknown flag ${String(flag)}`);
  if (expectedLength !== undefined && payload.length !== expectedLength) {
    throw new FormatError('bad-blob', `blob ${id} holds ${payload.length} bytes, not the ${expectedLength} its pack lists`);
  }
  return payload;
}
