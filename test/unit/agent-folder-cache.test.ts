import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rename, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BlobCodec, decodeTree, generateKeys } from '../../format/index.js';
import { Archiver, type FileReaders } from '../../agent/archiver.js';
import type { BlobSink } from '../../agent/file-pool.js';
import { FolderCache, type FolderRecord } from '../../agent/folder-cache.js';
import { Packer } from '../../agent/packer.js';
import type { Remote } from '../../agent/remote.js';
import { BlobReader, TreeCache, TreeLoader } from '../../agent/trees.js';

const codec = new BlobCodec(generateKeys());
const noRemote: Remote = {
  getFile: () => Promise.reject(new Error('no gateway in this test')),
  putFile: async () => undefined,
  list: async () => [],
  sizes: async () => new Map(),
  getIndex: async () => Buffer.alloc(0),
  remove: () => Promise.reject(new Error('no gateway in this test')),
  move: () => Promise.reject(new Error('no gateway in this test')),
};

/** Readers that "store" each file as one blob (its content's id), and list the files they read. */
function fakeReaders(read: string[]) {
  return (_sink: BlobSink): FileReaders => ({
    run: async (paths) => {
      read.push(...paths);
      return { result: Promise.resolve({ bytesRead: 0, files: paths.map((p) => ({ content: [codec.id(readFileSync(p))] })) }) };
    },
    seal: async () => undefined,
  });
}

/** Counts the parent trees that had to be decoded. */
class CountingLoader extends TreeLoader {
  decoded = 0;
  override async entries(id: string | null) {
    if (id) this.decoded++;
    return super.entries(id);
  }
}

/**
 * One backup of `folder` by the real Archiver, its trees kept in one shared in-memory cache (as the
 * tree cache file would have them), and `known` standing for the gateway's index.
 */
async function backup(
  folder: string,
  cache: TreeCache,
  known: Set<string>,
  parent: { root: string | null; folders: ReadonlyMap<string, FolderRecord> | null },
) {
  const read: string[] = [];
  const parentTrees = new CountingLoader(new BlobReader(noRemote, new Map(), codec, cache));
  if (!parent.folders) await parentTrees.preload(parent.root);
  parentTrees.decoded = 0;
  const archiver = new Archiver({
    codec,
    readers: fakeReaders(read),
    known,
    packer: new Packer({ putPack: async () => undefined }),
    parentTrees,
    folders: parent.folders,
    treeCache: cache,
    exclude: [],
    isCancelled: () => false,
  });
  const root = await archiver.archive([folder], parent.root);
  return { root, read, decoded: parentTrees.decoded, records: archiver.folderRecords, totals: archiver.totals };
}

describe('agent: the folder cache (unchanged folders are not compared entry by entry)', () => {
  let dir: string;
  let src: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kura-folders-'));
    src = join(dir, 'src');
    for (const d of ['a/b', 'c', 'd/e']) await mkdir(join(src, d), { recursive: true });
    for (const f of ['a/b/one.txt', 'a/two.txt', 'c/three.txt', 'd/e/four.txt', 'five.txt'])
      await writeFile(join(src, f), `content of ${f}`);
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('keeps every tree without decoding any when nothing changed, and re-reads only the changed file when one did', async () => {
    const cache = await TreeCache.load(null);
    const known = new Set<string>();
    const first = await backup(src, cache, known, { root: null, folders: null });
    assert.equal(first.read.length, 5);

    const same = await backup(src, cache, known, { root: first.root, folders: first.records });
    assert.equal(same.root, first.root, 'the same snapshot root');
    assert.deepEqual(same.read, [], 'no file read');
    assert.equal(same.decoded, 1, "only the snapshot's root tree was decoded");
    assert.equal(same.totals.unchangedFiles, 5);

    // One file deep down changes: its folder and the folders above it get new trees, the rest is kept.
    const changed = join(src, 'a/b/one.txt');
    await writeFile(changed, 'new content, longer than before');
    const after = await backup(src, cache, known, { root: first.root, folders: same.records });
    assert.deepEqual(after.read, [changed]);
    assert.deepEqual([after.totals.changedFiles, after.totals.unchangedFiles], [1, 4]);
    assert.ok(after.decoded <= 4, `decoded ${after.decoded} trees: the root, src, a and a/b at most (c and d untouched)`);

    // The same backup with the whole parent compared entry by entry gives the very same trees.
    const slow = await backup(src, cache, known, { root: first.root, folders: null });
    assert.equal(after.root, slow.root);
    assert.deepEqual(slow.read, [changed]);

    // The kept file next to the changed folder still points at its first content.
    const a = after.records.get('src/a')!;
    const entries = decodeTree(codec.decode(cache.get(a.tree)!, a.tree));
    assert.deepEqual(entries.find((e) => e.name === 'two.txt')?.content, [codec.id(Buffer.from('content of a/two.txt'))]);
  });

  it('notices a file changed without its folder changing, and a new file whose folder kept its mtime', async () => {
    const cache = await TreeCache.load(null);
    const known = new Set<string>();
    const first = await backup(src, cache, known, { root: null, folders: null });
    const c = join(src, 'c');
    const before = new Date('2020-01-02T03:04:05Z');
    await writeFile(join(c, 'new.txt'), 'a new file');
    await utimes(c, before, before);
    await writeFile(join(src, 'd/e/four.txt'), 'same size!!!!!!!!!!!');
    const after = await backup(src, cache, known, { root: first.root, folders: first.records });
    const slow = await backup(src, cache, known, { root: first.root, folders: null });
    assert.equal(after.root, slow.root);
    assert.deepEqual(after.read.sort(), [join(c, 'new.txt'), join(src, 'd/e/four.txt')].sort());
    await rm(join(c, 'new.txt'));
  });

  it('finds a renamed folder by its inode and reads none of its files, giving the same trees as reading them', async () => {
    const cache = await TreeCache.load(null);
    const known = new Set<string>();
    const first = await backup(src, cache, known, { root: null, folders: null });
    await rename(join(src, 'd'), join(src, 'moved-d'));
    try {
      const after = await backup(src, cache, known, { root: first.root, folders: first.records });
      assert.deepEqual(after.read, [], 'the files of moved-d/ and moved-d/e/ were not read');
      assert.equal(after.totals.unchangedFiles, 5);
      const slow = await backup(src, cache, known, { root: first.root, folders: null });
      assert.equal(slow.read.length, 1, 'compared by path, the moved file is read again');
      assert.equal(after.root, slow.root);
      assert.equal(after.records.get('src/moved-d/e')?.tree, first.records.get('src/d/e')?.tree);
    } finally {
      await rename(join(src, 'moved-d'), join(src, 'd'));
    }
  });

  it('is used only for the snapshot it was made with, and a damaged file is not used at all', async () => {
    const file = join(dir, 'folders.json');
    const cache = await TreeCache.load(null);
    const first = await backup(src, cache, new Set(), { root: null, folders: null });
    await (await FolderCache.load(file)).save(first.root, first.records);
    const loaded = await FolderCache.load(file);
    assert.equal(loaded.recordsFor(first.root)?.size, first.records.size);
    assert.equal(loaded.recordsFor('0'.repeat(64)), null, 'another parent snapshot');
    const bytes = await readFile(file);
    bytes[10] = bytes[10]! ^ 1;
    await writeFile(file, bytes);
    assert.equal((await FolderCache.load(file)).recordsFor(first.root), null, 'a flipped byte');
  });
});
