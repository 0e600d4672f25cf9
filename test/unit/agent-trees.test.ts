import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BlobCodec, encodeTree, generateKeys, PackBuilder, type TreeEntry } from '../../format/index.js';
import type { Remote } from '../../agent/remote.js';
import type { BlobLocation } from '../../agent/repository.js';
import { DecodePool } from '../../agent/decode-pool.js';
import { BlobReader, TreeCache, TreeLoader, type BlobOpener } from '../../agent/trees.js';

const codec = new BlobCodec(generateKeys());
const tree = (name: string): Buffer =>
  encodeTree([{ name, type: 'file', mode: 0o644, mtimeNs: '1', size: 0, content: [] } satisfies TreeEntry]);

/** A Remote that answers GETs with getFile and has nothing else to do in these tests. */
function readOnlyRemote(getFile: Remote['getFile']): Remote {
  return {
    getFile,
    putFile: async () => undefined,
    list: async () => [],
    sizes: async () => new Map(),
    getIndex: async () => Buffer.alloc(0),
    remove: () => Promise.reject(new Error('this test deletes nothing')),
    move: () => Promise.reject(new Error('this test moves nothing')),
  };
}

/** A pack of two encrypted trees served by a Remote that counts its ranged GETs. */
function fixture() {
  const plains = [tree('a'), tree('b')];
  const ids = plains.map((p) => codec.id(p));
  const builder = new PackBuilder();
  plains.forEach((p, i) => builder.add(ids[i]!, 'tree', codec.encode(p), p.length));
  const pack = builder.finish();
  const index = new Map<string, BlobLocation>(pack.entries.map((e) => [e.id, { ...e, pack: pack.id, type: 't' }]));
  const remote = Object.assign(
    readOnlyRemote(async (_path, range) => {
      remote.gets++;
      return range ? pack.bytes.subarray(range.start, range.end + 1) : pack.bytes;
    }),
    { gets: 0 },
  );
  return { ids, index, remote };
}

describe('agent: the local tree cache', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kura-trees-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('keeps fetched trees, saves the ones asked for, and serves them next time without a request', async () => {
    const { ids, index, remote } = fixture();
    const file = join(dir, 'trees.bin');
    const first = await TreeCache.load(file);
    const loaded = await new BlobReader(remote, index, codec, first).readMany(ids);
    assert.equal(loaded.size, 2);
    assert.equal(remote.gets, 1);
    await first.save([ids[0]!]);
    const again = await TreeCache.load(file);
    const trees = new TreeLoader(new BlobReader(remote, index, codec, again));
    assert.deepEqual([...(await trees.entries(ids[0]!)).keys()], ['a']);
    assert.equal(remote.gets, 1, 'the saved tree came from the file');
    assert.deepEqual([...(await trees.entries(ids[1]!)).keys()], ['b']);
    assert.equal(remote.gets, 2, 'the tree that was not saved came from the gateway');
  });

  it('fetches from the gateway when a cached blob is damaged, and reads a truncated file up to the damage', async () => {
    const { ids, index, remote } = fixture();
    const file = join(dir, 'damaged.bin');
    const cache = await TreeCache.load(file);
    await new BlobReader(remote, index, codec, cache).readMany(ids);
    await cache.save(ids);
    const bytes = await readFile(file);
    bytes[40] = bytes[40]! ^ 0xff; // inside the first blob
    await writeFile(file, bytes);
    const damaged = await TreeCache.load(file);
    const out = await new BlobReader(remote, index, codec, damaged).readMany([ids[0]!]);
    assert.equal(out.size, 1);
    assert.equal(remote.gets, 2, 'the damaged blob was fetched again');
    await truncate(file, bytes.length - 3);
    const short = await TreeCache.load(file);
    assert.ok(short.get(ids[0]!), 'the first blob is still read');
    assert.equal(short.get(ids[1]!), undefined, 'the cut-off blob is dropped');
    assert.equal((await TreeCache.load(join(dir, 'missing.bin'))).get(ids[0]!), undefined);
  });

  it("opens a large batch of cached trees on the decode pool's workers, and fetches a damaged one from the gateway", async () => {
    const plains = Array.from({ length: 300 }, (_, i) => tree(`file-${i}`));
    const ids = plains.map((p) => codec.id(p));
    const builder = new PackBuilder();
    plains.forEach((p, i) => builder.add(ids[i]!, 'tree', codec.encode(p), p.length));
    const pack = builder.finish();
    const index = new Map<string, BlobLocation>(pack.entries.map((e) => [e.id, { ...e, pack: pack.id, type: 't' }]));
    const ranges: number[] = [];
    const remote = readOnlyRemote(async (_path, range) => {
      ranges.push(range?.start ?? 0);
      return range ? pack.bytes.subarray(range.start, range.end + 1) : pack.bytes;
    });
    const cache = await TreeCache.load(null);
    for (const e of pack.entries) cache.keep(e.id, Buffer.from(pack.bytes.subarray(e.offset, e.offset + e.length)));
    const damaged = Buffer.from(cache.get(ids[200]!)!);
    damaged[20] = damaged[20]! ^ 0xff;
    cache.keep(ids[200]!, damaged);
    const pool = new DecodePool(codec, 2, { cells: 1, cellSize: 64 << 10 });
    try {
      let batches = 0;
      const opener: BlobOpener = { open: (items) => (batches++, pool.open(items)) };
      const got = await new BlobReader(remote, index, codec, cache, opener).readMany(ids);
      assert.equal(batches, 3, '300 cached trees went to the workers in batches of 128');
      assert.equal(got.size, 300);
      ids.forEach((id, i) => assert.deepEqual(got.get(id), plains[i], `tree ${i}`));
      assert.deepEqual(ranges, [index.get(ids[200]!)!.offset], 'only the damaged tree was fetched');
      assert.deepEqual(
        cache.get(ids[200]!),
        pack.bytes.subarray(index.get(ids[200]!)!.offset, index.get(ids[200]!)!.offset + index.get(ids[200]!)!.length),
        'the cache holds the good copy again',
      );
    } finally {
      await pool.close();
    }
  });
});

describe('agent: loading trees ahead', () => {
  /** root → docs/ (→ keep.txt) and media/ (→ big.bin), each tree in its own pack. */
  function nested() {
    const file = (name: string): TreeEntry => ({ name, type: 'file', mode: 0o644, mtimeNs: '1', size: 0, content: [] });
    const dir = (name: string, subtree: string): TreeEntry => ({ name, type: 'dir', mode: 0o755, mtimeNs: '1', size: 0, subtree });
    const docs = encodeTree([file('keep.txt')]);
    const media = encodeTree([file('big.bin')]);
    const ids = { docs: codec.id(docs), media: codec.id(media) } as Record<string, string>;
    const root = encodeTree([dir('docs', ids.docs!), dir('media', ids.media!)]);
    ids.root = codec.id(root);
    const packs = new Map<string, Buffer>();
    const index = new Map<string, BlobLocation>();
    for (const [id, plain] of [
      [ids.root!, root],
      [ids.docs!, docs],
      [ids.media!, media],
    ] as const) {
      const builder = new PackBuilder();
      builder.add(id, 'tree', codec.encode(plain), plain.length);
      const pack = builder.finish();
      packs.set(pack.id, pack.bytes);
      for (const e of pack.entries) index.set(e.id, { ...e, pack: pack.id, type: 't' });
    }
    const fetched: string[] = [];
    const remote = readOnlyRemote(async (path, range) => {
      const pack = [...packs].find(([id]) => path.endsWith(id));
      if (!pack || !range) throw new Error(`unexpected GET ${path}`);
      fetched.push([...index.values()].find((l) => l.pack === pack[0])!.id);
      return pack[1].subarray(range.start, range.end + 1);
    });
    return { ids, index, remote, fetched };
  }

  it('loads only the folders descend accepts, and the rest on demand', async () => {
    const { ids, index, remote, fetched } = nested();
    const trees = new TreeLoader(new BlobReader(remote, index, codec));
    await trees.preload(ids.root!, (path) => path === 'docs');
    assert.deepEqual(fetched.sort(), [ids.root!, ids.docs!].sort(), 'media/ was not fetched');
    assert.deepEqual([...(await trees.entries(ids.docs!)).keys()], ['keep.txt']);
    assert.equal(fetched.length, 2, 'docs/ came from the preload');
    assert.deepEqual([...(await trees.entries(ids.media!)).keys()], ['big.bin']);
    assert.equal(fetched.length, 3, 'media/ is fetched when asked for');
  });

  it('loads every folder without a filter', async () => {
    const { ids, index, remote, fetched } = nested();
    await new TreeLoader(new BlobReader(remote, index, codec)).preload(ids.root!);
    assert.equal(fetched.length, 3);
  });
});
