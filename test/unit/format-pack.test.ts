import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import {
  BlobCodec,
  FormatError,
  MAX_PACK_SIZE,
  PackBuilder,
  PackWriter,
  packIdOf,
  parsePack,
  readPackTrailer,
  type BlobType,
  type PackEntry,
} from '../../format/index.js';

const badPack = (e: unknown) => e instanceof FormatError && e.code === 'bad-pack';
const id = (n: number) => n.toString(16).padStart(2, '0').repeat(32);

function samplePack(): { id: string; bytes: Buffer; entries: PackEntry[] } {
  const codec = new BlobCodec(null);
  const builder = new PackBuilder();
  const blobs: [BlobType, Buffer][] = [
    ['data', randomBytes(1000)],
    ['tree', Buffer.from('{"v":1,"entries":[]}')],
    ['data', randomBytes(5)],
  ];
  for (const [type, plain] of blobs) builder.add(codec.id(plain), type, codec.encode(plain), plain.length);
  return builder.finish();
}

/** A pack with the given blob region and a hand-written trailer, to test the reader's rules. */
function forge(region: Buffer, trailer: unknown, opts: { magic?: string; version?: number; trailerLength?: number } = {}): Buffer {
  const json = Buffer.from(JSON.stringify(trailer));
  const len = Buffer.alloc(4);
  len.writeUInt32LE(opts.trailerLength ?? json.length);
  const header = Buffer.concat([Buffer.from(opts.magic ?? 'KURAPACK'), Buffer.from([opts.version ?? 1])]);
  return Buffer.concat([header, region, json, len, Buffer.from('KURAEND1')]);
}

const entry = (n: number, o: number, l: number) => ({ id: id(n), t: 'd', o, l, u: l - 1 });

async function readBoth(bytes: Buffer): Promise<PackEntry[]> {
  const fromParse = parsePack(bytes).entries;
  const fromReads = await readPackTrailer(bytes.length, async (o, l) => bytes.subarray(o, o + l));
  assert.deepEqual(fromReads, fromParse);
  return fromReads;
}

const refusedBoth = async (bytes: Buffer, why?: RegExp) => {
  const check = (e: unknown) => badPack(e) && (why === undefined || why.test((e as Error).message));
  assert.throws(() => parsePack(bytes), check);
  await assert.rejects(
    readPackTrailer(bytes.length, async (o, l) => bytes.subarray(o, o + l)),
    check,
  );
};

describe('format: packs', () => {
  it('round-trips blobs back to back after the 9-byte header, in order', async () => {
    const pack = samplePack();
    assert.deepEqual(pack.bytes.subarray(0, 9), Buffer.from('KURAPACK\x01', 'latin1'));
    assert.deepEqual(pack.bytes.subarray(-8), Buffer.from('KURAEND1'));
    const entries = await readBoth(pack.bytes);
    assert.deepEqual(entries, pack.entries);
    assert.deepEqual(
      entries.map((e) => [e.type, e.offset]),
      [
        ['data', 9],
        ['tree', 1010],
        ['data', 1031],
      ],
    );
    for (const e of entries) new BlobCodec(null).decode(pack.bytes.subarray(e.offset, e.offset + e.length), e.id, e.plainLength);
  });

  it('names a pack by the SHA-256 of all its bytes', () => {
    const pack = samplePack();
    assert.equal(pack.id, createHash('sha256').update(pack.bytes).digest('hex'));
    assert.equal(packIdOf(pack.bytes), pack.id);
  });

  it('reads the trailer with three small reads and never touches the blobs', async () => {
    const big = new PackBuilder();
    big.add(id(1), 'data', randomBytes(100_000), 99_999);
    const pack = big.finish();
    const reads: [number, number][] = [];
    await readPackTrailer(pack.bytes.length, async (o, l) => {
      reads.push([o, l]);
      return pack.bytes.subarray(o, o + l);
    });
    assert.equal(reads.length, 3);
    assert.ok(reads.every(([o, l]) => o + l <= 9 || o >= 100_009));
  });

  it('counts blobs and bytes while building', () => {
    const builder = new PackBuilder();
    assert.deepEqual([builder.size, builder.count], [9, 0]);
    builder.add(id(1), 'data', Buffer.alloc(10, 1), 9);
    assert.deepEqual([builder.size, builder.count], [19, 1]);
  });

  it('refuses repeated ids, bad ids, empty packs and blobs past the size limit', () => {
    const builder = new PackBuilder();
    builder.add(id(1), 'data', Buffer.alloc(3), 2);
    assert.throws(() => builder.add(id(1), 'data', Buffer.alloc(3), 2), badPack);
    assert.throws(() => builder.add('ABC', 'data', Buffer.alloc(3), 2), badPack);
    assert.equal(builder.canAdd(MAX_PACK_SIZE), false);
    assert.equal(builder.canAdd(1000), true);
    assert.throws(() => new PackBuilder().finish(), badPack);
    builder.finish();
    assert.throws(() => builder.add(id(2), 'data', Buffer.alloc(3), 2), badPack);
  });
});

describe('format: pack readers refuse tampering', () => {
  const region = Buffer.alloc(30, 7);

  it('accepts a well-formed forged pack (the baseline for the cases below)', async () => {
    const entries = await readBoth(forge(region, { v: 1, blobs: [entry(1, 9, 10), entry(2, 19, 20)] }));
    assert.equal(entries.length, 2);
  });

  it('refuses a bad start magic, a bad end magic and another version', async () => {
    const good = { v: 1, blobs: [entry(1, 9, 30)] };
    await refusedBoth(forge(region, good, { magic: 'KURAPACX' }), /KURAPACK/);
    await refusedBoth(forge(region, good, { version: 2 }), /version 2/);
    const badEnd = forge(region, good);
    badEnd[badEnd.length - 1] = 0x30;
    await refusedBoth(badEnd, /KURAEND1/);
  });

  it('refuses overlapping entries', async () => {
    await refusedBoth(forge(region, { v: 1, blobs: [entry(1, 9, 20), entry(2, 19, 20)] }), /overlaps/);
  });

  it('refuses an entry that runs past the blob region into the trailer', async () => {
    await refusedBoth(forge(region, { v: 1, blobs: [entry(1, 9, 10), entry(2, 19, 25)] }), /past the blob region/);
  });

  it('refuses gaps, unlisted tail bytes and repeated ids', async () => {
    await refusedBoth(forge(region, { v: 1, blobs: [entry(1, 9, 10), entry(2, 21, 18)] }), /unlisted/);
    await refusedBoth(forge(region, { v: 1, blobs: [entry(1, 9, 10)] }), /unlisted/);
    await refusedBoth(forge(region, { v: 1, blobs: [entry(1, 9, 10), entry(1, 19, 20)] }), /repeats/);
  });

  it('refuses a huge or impossible trailer length before reading it', async () => {
    const good = { v: 1, blobs: [entry(1, 9, 30)] };
    await refusedBoth(forge(region, good, { trailerLength: 0xfffffff0 }), /16 MiB/);
    await refusedBoth(forge(region, good, { trailerLength: 1000 }), /do not fit/);
  });

  it('refuses malformed trailers: bad ids, unknown types, unknown fields, no blobs, not JSON', async () => {
    const bad = [
      { v: 1, blobs: [{ ...entry(1, 9, 30), id: 'xyz' }] },
      { v: 1, blobs: [{ ...entry(1, 9, 30), t: 'x' }] },
      { v: 1, blobs: [{ ...entry(1, 9, 30), extra: 1 }] },
      { v: 1, blobs: [] },
      { v: 2, blobs: [entry(1, 9, 30)] },
    ];
    for (const t of bad) await refusedBoth(forge(region, t));
    const notJson = forge(region, 'x');
    notJson.write('{', notJson.length - 12 - 3);
    await refusedBoth(notJson);
  });

  it('refuses packs too small to hold anything, and short reads', async () => {
    await refusedBoth(Buffer.from('KURAPACK'));
    const pack = samplePack();
    await assert.rejects(
      readPackTrailer(pack.bytes.length, async (o, l) => pack.bytes.subarray(o, o + l - 1)),
      badPack,
    );
  });

  describe('PackWriter (a pack built in a caller-owned buffer)', () => {
    it('writes the same bytes and id as PackBuilder, and a reused buffer gives a fresh pack', () => {
      const codec = new BlobCodec(null);
      const plains = [randomBytes(3000), Buffer.from('hello '.repeat(500)), randomBytes(7)];
      const builder = new PackBuilder();
      const buf = Buffer.alloc(1 << 16, 0xee);
      const writer = new PackWriter(buf);
      for (const p of plains) {
        const stored = codec.encode(p);
        builder.add(codec.id(p), 'data', stored, p.length);
        writer.add(codec.id(p), 'data', stored, p.length);
      }
      const want = builder.finish();
      const got = writer.finish();
      assert.equal(got.id, want.id);
      assert.equal(got.id, packIdOf(buf.subarray(0, got.length)));
      assert.deepEqual(buf.subarray(0, got.length), want.bytes);
      assert.deepEqual(parsePack(buf.subarray(0, got.length)).entries, want.entries);
      const again = new PackWriter(buf);
      again.add(id(9), 'data', Buffer.from('x'), 1);
      const second = again.finish();
      assert.equal(parsePack(buf.subarray(0, second.length)).entries.length, 1);
    });

    it('never outgrows its buffer, refuses repeats and bad ids, and cannot be finished twice or empty', () => {
      const writer = new PackWriter(Buffer.alloc(4096));
      assert.equal(writer.canAdd(4096), false);
      assert.throws(() => writer.add(id(1), 'data', Buffer.alloc(4096), 4096), badPack);
      assert.throws(() => writer.finish(), badPack);
      writer.add(id(1), 'data', Buffer.alloc(100), 100);
      assert.throws(() => writer.add(id(1), 'data', Buffer.alloc(10), 10), badPack);
      assert.throws(() => writer.add('nope', 'data', Buffer.alloc(10), 10), badPack);
      writer.finish();
      assert.throws(() => writer.finish(), badPack);
      assert.throws(() => new PackWriter(Buffer.alloc(16)), badPack);
    });
  });
});
