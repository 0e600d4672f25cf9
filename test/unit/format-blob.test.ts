import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { BlobCodec, FormatError, generateKeys, verifyPlainBlob, type FormatErrorCode } from '../../format/index.js';

const failsWith =
  (code: FormatErrorCode, text?: string) =>
  (e: unknown): boolean =>
    e instanceof FormatError && e.code === code && (text === undefined || e.message.includes(text));

/** About 1 MiB of text that compresses the way source code and documents do. */
function text(size = 1 << 20): Buffer {
  const words = ['backup', 'gateway', 'snapshot', 'restore', 'quota', 'contract', 'pack', 'blob', 'tree', '蔵'];
  const parts: string[] = [];
  let n = 0;
  for (let i = 0; n < size; i++) {
    const line = `${i}: ${words[i % words.length]} ${words[(i * 7) % words.length]} ${(i * 2654435761) % 1000}\n`;
    parts.push(line);
    n += Buffer.byteLength(line);
  }
  return Buffer.from(parts.join('')).subarray(0, size);
}

const flip = (buf: Buffer, at: number): Buffer => {
  const copy = Buffer.from(buf);
  copy[at] = (copy[at] ?? 0) ^ 0x01;
  return copy;
};

describe('format: blob ids', () => {
  it('uses plain SHA-256 in a plaintext repository', () => {
    const plain = text(5000);
    assert.equal(new BlobCodec(null).id(plain), createHash('sha256').update(plain).digest('hex'));
  });

  it('uses an HMAC under idKey in an encrypted repository, so ids differ from SHA-256 and between keys', () => {
    const plain = text(5000);
    const keys = generateKeys();
    const id = new BlobCodec(keys).id(plain);
    assert.equal(id, createHmac('sha256', keys.idKey).update(plain).digest('hex'));
    assert.notEqual(id, createHash('sha256').update(plain).digest('hex'));
    assert.notEqual(id, new BlobCodec(generateKeys()).id(plain));
    assert.equal(id, new BlobCodec({ encKey: generateKeys().encKey, idKey: keys.idKey }).id(plain), 'the id depends on idKey only');
  });
});

describe('format: blob encoding', () => {
  for (const [label, keys] of [
    ['plaintext', null],
    ['encrypted', generateKeys()],
  ] as const) {
    it(`round-trips text, random data and empty blobs (${label})`, () => {
      const codec = new BlobCodec(keys);
      for (const plain of [text(), randomBytes(300_000), Buffer.alloc(0), Buffer.from('x')]) {
        const id = codec.id(plain);
        assert.deepEqual(codec.decode(codec.encode(plain), id, plain.length), plain);
      }
    });
  }

  it('compresses text and stores random data raw (plaintext layout: flag byte, then payload)', () => {
    const codec = new BlobCodec(null);
    const plain = text();
    const packed = codec.encode(plain);
    assert.equal(packed[0], 1);
    assert.ok(packed.length < plain.length * 0.5, `text should shrink well, got ${packed.length}`);
    const noise = randomBytes(1 << 20);
    const stored = codec.encode(noise);
    assert.equal(stored[0], 0);
    assert.equal(stored.length, noise.length + 1);
    assert.deepEqual(stored.subarray(1), noise);
  });

  it('compresses a chunk that starts random and ends in text, and one with text only in its middle', () => {
    const codec = new BlobCodec(null);
    const textPart = text().subarray(0, 512 << 10);
    for (const plain of [
      Buffer.concat([randomBytes(700 << 10), textPart]),
      Buffer.concat([randomBytes(400 << 10), textPart, randomBytes(400 << 10)]),
    ]) {
      const stored = codec.encode(plain);
      assert.equal(stored[0], 1, 'stored compressed');
      assert.ok(stored.length < plain.length - 256 * 1024, `the text half should shrink, stored ${stored.length} of ${plain.length}`);
      assert.deepEqual(codec.decode(stored, codec.id(plain), plain.length), plain);
    }
  });

  it('compresses small text blobs up to 64 KiB whole and keeps small random ones raw', () => {
    const codec = new BlobCodec(null);
    for (const size of [2000, 16 << 10, (16 << 10) + 1, 40 << 10, 64 << 10]) {
      const plain = text().subarray(0, size);
      const stored = codec.encode(plain);
      assert.equal(stored[0], 1, `${size} bytes of text stored compressed`);
      assert.ok(stored.length < size * 0.6, `${size} bytes of text stored in ${stored.length}`);
      assert.deepEqual(codec.decode(stored, codec.id(plain), size), plain);
      const noise = randomBytes(size);
      assert.equal(codec.encode(noise)[0], 0, `${size} random bytes stored raw`);
    }
    const tail = Buffer.concat([randomBytes(44 << 10), text().subarray(0, 20 << 10)]);
    assert.equal(codec.encode(tail)[0], 1, 'a 64 KiB blob with text in its last 20 KiB is compressed');
  });

  it('leaves tiny blobs raw and adds exactly nonce and tag when encrypting raw data', () => {
    assert.equal(new BlobCodec(null).encode(Buffer.from('aaaaaaaaaaaa'))[0], 0);
    const noise = randomBytes(70_000);
    assert.equal(new BlobCodec(generateKeys()).encode(noise).length, 12 + 1 + noise.length + 16);
  });

  it('compresses before encrypting, so encrypted text is small too', () => {
    const plain = text();
    assert.ok(new BlobCodec(generateKeys()).encode(plain).length < plain.length * 0.5);
  });

  it('uses a fresh nonce each time, so equal blobs encrypt differently', () => {
    const codec = new BlobCodec(generateKeys());
    const plain = text(4096);
    assert.notDeepEqual(codec.encode(plain), codec.encode(plain));
  });
});

describe('format: blob decoding refuses damage', () => {
  it('gives wrong-key for a flipped byte anywhere in an encrypted blob', () => {
    const codec = new BlobCodec(generateKeys());
    const plain = text(50_000);
    const stored = codec.encode(plain);
    for (const at of [0, 11, 12, 13, stored.length - 17, stored.length - 1]) {
      assert.throws(() => codec.decode(flip(stored, at), codec.id(plain)), failsWith('wrong-key'), `byte ${at}`);
    }
  });

  it('gives wrong-key when another repository key opens the blob', () => {
    const keys = generateKeys();
    const plain = text(1000);
    const stored = new BlobCodec(keys).encode(plain);
    const other = new BlobCodec({ encKey: generateKeys().encKey, idKey: keys.idKey });
    assert.throws(() => other.decode(stored, new BlobCodec(keys).id(plain)), failsWith('wrong-key'));
  });

  it('binds the id into the box: a blob asked for under another id does not open, and names that id', () => {
    const codec = new BlobCodec(generateKeys());
    const plain = text(1000);
    const stored = codec.encode(plain);
    const wrongId = 'ab'.repeat(32);
    assert.throws(() => codec.decode(stored, wrongId), failsWith('wrong-key', `blob ${wrongId} does not open`));
    assert.throws(() => codec.decodeVerified(stored, wrongId), failsWith('wrong-key', 'is not the blob of this id'));
    // A genuine blob of the same repository, served in place of another (same length, too).
    const other = text(1000).fill(0x61, 0, 10);
    const otherStored = codec.encode(other);
    assert.throws(() => codec.decode(otherStored, codec.id(plain), plain.length), failsWith('wrong-key'));
    assert.deepEqual(codec.decodeVerified(stored, codec.id(plain), plain.length), plain);
  });

  it('reads and writes version 1 boxes (no id bound) when told to, hashing the content against the id', () => {
    const keys = generateKeys();
    const v1 = new BlobCodec(keys, false);
    const plain = text(1000);
    const stored = v1.encode(plain);
    assert.deepEqual(v1.decode(stored, v1.id(plain), plain.length), plain);
    const wrongId = 'ab'.repeat(32);
    assert.throws(() => v1.decode(stored, wrongId), failsWith('bad-blob', wrongId));
    assert.throws(() => new BlobCodec(keys).decode(stored, v1.id(plain)), failsWith('wrong-key'), 'a version 2 reader binds the id');
    assert.throws(
      () => v1.decode(new BlobCodec(keys).encode(plain), v1.id(plain)),
      failsWith('wrong-key'),
      'and a version 1 reader does not',
    );
  });

  it('makes the same codec on a worker from its spec', () => {
    const codec = new BlobCodec(generateKeys());
    const plain = text(1000);
    const copy = BlobCodec.fromSpec(structuredClone(codec.spec()));
    assert.equal(copy.boundIds, true);
    assert.deepEqual(copy.decode(codec.encode(plain), codec.id(plain)), plain);
    assert.equal(BlobCodec.fromSpec(new BlobCodec(generateKeys(), false).spec()).boundIds, false);
  });

  it('gives bad-blob for a flipped byte in a plaintext blob, raw or compressed', () => {
    const codec = new BlobCodec(null);
    for (const plain of [randomBytes(10_000), text(100_000)]) {
      const stored = codec.encode(plain);
      for (const at of [0, 1, 40, stored.length - 1]) {
        assert.throws(() => codec.decode(flip(stored, at), codec.id(plain)), failsWith('bad-blob'), `byte ${at}`);
      }
    }
  });

  it('refuses unknown flags, empty blobs, trailing bytes after a zstd frame and a size that differs from the pack', () => {
    const codec = new BlobCodec(null);
    const plain = text(100_000);
    const id = codec.id(plain);
    const stored = codec.encode(plain);
    assert.throws(() => codec.decode(Buffer.concat([Buffer.from([2]), plain]), id), failsWith('bad-blob', 'unknown flag'));
    assert.throws(() => codec.decode(Buffer.alloc(0), id), failsWith('bad-blob'));
    assert.throws(() => codec.decode(Buffer.concat([stored, Buffer.from([0])]), id), failsWith('bad-blob', 'after its zstd frame'));
    assert.throws(() => codec.decode(stored, id, plain.length + 1), failsWith('bad-blob', 'declares'));
    assert.throws(() => codec.decode(Buffer.concat([Buffer.from([1]), plain]), id), failsWith('bad-blob', 'not a zstd frame'));
  });

  it('refuses a zstd frame that declares more than a blob may hold, before allocating it', () => {
    const stored = new BlobCodec(null).encode(Buffer.alloc(300_000));
    const fhd = stored[5] ?? 0; // frame header descriptor, after the flag byte and the 4-byte magic
    assert.equal(fhd >> 6, 2, 'a 300 kB frame declares its size in 4 bytes');
    const sizeAt = 6 + ((fhd >> 5) & 1 ? 0 : 1);
    const bomb = Buffer.from(stored);
    bomb.writeUInt32LE(0xf0000000, sizeAt);
    assert.throws(() => verifyPlainBlob(bomb, 'e'.repeat(64)), failsWith('bad-blob', 'more than'));
  });

  it('lets the gateway verify plaintext blobs without keys', () => {
    const codec = new BlobCodec(null);
    const plain = text(200_000);
    const stored = codec.encode(plain);
    assert.deepEqual(verifyPlainBlob(stored, codec.id(plain), plain.length), plain);
    assert.throws(() => verifyPlainBlob(stored, codec.id(Buffer.from('other'))), failsWith('bad-blob'));
  });
});
