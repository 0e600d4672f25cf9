import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BlobCodec, PackBuilder, type PackEntry } from '../../format/index.js';
import { KuraError } from '../../gateway/errors.js';
import { BlobIndex, type IndexedPack } from '../../gateway/storage/blob-index.js';
import type { AreaDirs } from '../../gateway/storage/data-dir.js';
import { checkArea, compareWithIndex, listPackFiles, rebuildIndex } from '../../gateway/storage/pack-check.js';

const hex = (c: string) => c.repeat(64);
const entry = (id: string, offset: number, length = 10): PackEntry => ({ id, type: 'data', offset, length, plainLength: length });
const indexed = (pack: string, entries: PackEntry[]): IndexedPack => ({
  pack,
  blobs: entries.map((e) => ({ id: e.id, type: 'd' as const, offset: e.offset, length: e.length, plainLength: e.plainLength })),
});

let root: string;

describe('gateway: pack check', () => {
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'kura-pack-check-'));
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('compareWithIndex: packs not indexed, entries that disagree, indexed packs missing; duplicates are fine', () => {
    const [a, b, c, gone] = [hex('a'), hex('b'), hex('c'), hex('d')];
    const scanned = [
      { id: a, entries: [entry(hex('1'), 9), entry(hex('2'), 19)] },
      { id: b, entries: [entry(hex('3'), 9)] },
      { id: c, entries: [entry(hex('4'), 9)] },
      { id: hex('e'), entries: null },
    ];
    const index = [
      indexed(a, scanned[0]!.entries!),
      indexed(a, scanned[0]!.entries!),
      indexed(c, [entry(hex('4'), 10)]),
      indexed(gone, [entry(hex('5'), 9)]),
    ];
    assert.deepEqual(
      compareWithIndex(scanned, index).map((p) => [p.kind, p.pack, p.blobs]),
      [
        ['not-indexed', b, [hex('3')]],
        ['index-disagrees', c, [hex('4')]],
        ['missing-pack', gone, [hex('5')]],
      ],
    );
    assert.deepEqual(compareWithIndex(scanned.slice(0, 1), index.slice(0, 1)), []);
  });

  it('listPackFiles: only packs/<2 hex>/<64 hex id> counts; anything else is a bad name', async () => {
    const packs = join(root, 'list-packs');
    await mkdir(join(packs, 'aa'), { recursive: true });
    await mkdir(join(packs, 'ZZ'));
    await writeFile(join(packs, 'aa', hex('a')), 'x');
    await writeFile(join(packs, 'aa', hex('b')), 'x');
    await writeFile(join(packs, 'aa', 'note.txt'), 'x');
    await writeFile(join(packs, 'stray'), 'x');
    const { files, problems } = await listPackFiles(packs);
    assert.deepEqual(
      files.map((f) => f.id),
      [hex('a')],
    );
    assert.deepEqual(problems.map((p) => p.pack).sort(), ['ZZ', `aa/${hex('b')}`, 'aa/note.txt', 'stray']);
    assert.deepEqual(await listPackFiles(join(root, 'none')), { files: [], problems: [] });
  });

  it('BlobIndex.replace swaps the file atomically; another process replacing it is seen even at the same size', async () => {
    const file = join(root, 'meta', 'index.ndjson');
    const index = new BlobIndex(file);
    await index.add(hex('a'), indexed(hex('a'), [entry(hex('1'), 9)]).blobs);
    assert.equal((await index.since(0)).epoch, '0', 'an index that never lost a pack is of epoch 0');
    await index.replace([indexed(hex('b'), [entry(hex('2'), 9)]), indexed(hex('c'), [entry(hex('3'), 9)])]);
    assert.deepEqual(
      (await index.list()).map((p) => p.pack),
      [hex('b'), hex('c')],
    );
    const { generation, epoch } = await index.since(0);
    assert.equal(generation, 2);
    assert.match(epoch, /^[0-9a-f]{16}$/, 'a replaced index has a new epoch');
    assert.equal((await index.since(2, epoch)).entries.length, 0, 'nothing new since generation 2 of this epoch');
    assert.equal((await index.since(2, '0')).entries.length, 2, 'a copy of another epoch gets the whole index');
    // The same lines with c first, written by "another process": the same size, a new inode.
    const lines = (await readFile(file, 'utf8')).trim().split('\n');
    const swapped = [lines[0]!, lines[2]!.replace('"g":2', '"g":1'), lines[1]!.replace('"g":1', '"g":2')].join('\n') + '\n';
    const other = join(root, 'meta', 'other');
    await writeFile(other, swapped);
    assert.equal(swapped.length, (await readFile(file, 'utf8')).length);
    await rename(other, file);
    assert.deepEqual(
      (await index.list()).map((p) => p.pack),
      [hex('c'), hex('b')],
    );
    assert.equal((await index.since(0)).epoch, epoch, 'the epoch is read back from the first line');

    const gone = await index.remove(new Set([hex('c'), hex('9')]));
    assert.deepEqual(
      gone.map((p) => p.pack),
      [hex('c')],
    );
    const after = await index.since(2, epoch);
    assert.notEqual(after.epoch, epoch, 'removing a pack starts a new epoch');
    assert.equal(after.generation, 2, 'generations never go back within the file');
    assert.deepEqual(
      after.entries.map((e) => e.pack),
      [hex('b')],
    );
    assert.match(await readFile(file, 'utf8'), new RegExp(`"drop":"${hex('c')}","epoch":"${after.epoch}"`), 'one appended line');
    assert.equal((await index.since(2, after.epoch)).entries.length, 0, 'nothing new since generation 2 of the new epoch');
    await index.add(hex('c'), indexed(hex('c'), [entry(hex('3'), 9)]).blobs);
    assert.deepEqual(
      (await index.since(2, after.epoch)).entries.map((e) => e.pack),
      [hex('c')],
      'a pack put back is new at generation 3',
    );
    await index.remove(new Set([hex('b'), hex('c')]));
    assert.equal((await readFile(file, 'utf8')).split('\n').filter(Boolean).length, 1, 'compacted once dropped lines outnumber the rest');
    assert.deepEqual(await index.list(), []);
    await writeFile(file, 'not json\n');
    await assert.rejects(index.list(), (e: unknown) => e instanceof KuraError && e.code === 'conflict');
  });

  it('BlobIndex: an index rewritten under the same inode number and grown is read again from the start', async () => {
    // A deleted index whose inode number the rebuilt one gets (kura admin check --repair-index) looks,
    // to stat, like the same file grown by appends. Rewriting in place keeps inode and birth time alike.
    const file = join(root, 'meta-reused', 'index.ndjson');
    const index = new BlobIndex(file);
    await index.add(hex('a'), indexed(hex('a'), [entry(hex('1'), 9)]).blobs);
    await index.add(hex('b'), indexed(hex('b'), [entry(hex('2'), 9)]).blobs);
    assert.equal((await index.list()).length, 2);
    const other = new BlobIndex(join(root, 'meta-reused', 'other.ndjson'));
    await other.replace([
      indexed(hex('c'), [entry(hex('3'), 9)]),
      indexed(hex('d'), [entry(hex('4'), 9)]),
      indexed(hex('e'), [entry(hex('5'), 9)]),
    ]);
    const rebuilt = await readFile(join(root, 'meta-reused', 'other.ndjson'));
    assert.ok(rebuilt.length > (await readFile(file)).length, 'the rewritten file is longer, as a rebuilt one with its header is');
    await writeFile(file, rebuilt);
    assert.deepEqual(
      (await index.list()).map((p) => p.pack),
      [hex('c'), hex('d'), hex('e')],
    );
    assert.match((await index.since(0)).epoch, /^[0-9a-f]{16}$/, 'the new epoch is read from its first line');
    await index.add(hex('f'), indexed(hex('f'), [entry(hex('6'), 9)]).blobs);
    assert.deepEqual(
      (await index.since(3)).entries.map((e) => e.pack),
      [hex('f')],
      'appends after it are still read incrementally',
    );
  });

  it('checkArea and rebuildIndex over a real area: a damaged index is reported, then rebuilt from the trailers', async () => {
    const dirs: AreaDirs = { files: '', kura: join(root, 'area', 'kura'), meta: join(root, 'area', 'meta'), props: '', tmp: '' };
    const codec = new BlobCodec(null);
    const builder = new PackBuilder();
    const plain = randomBytes(2000);
    builder.add(codec.id(plain), 'data', codec.encode(plain), plain.length);
    const pack = builder.finish();
    await mkdir(join(dirs.kura, 'packs', pack.id.slice(0, 2)), { recursive: true });
    await writeFile(join(dirs.kura, 'packs', pack.id.slice(0, 2), pack.id), pack.bytes);
    await mkdir(dirs.meta, { recursive: true });
    await writeFile(join(dirs.meta, 'index.ndjson'), '{"g":1,"pack":"oops"}\n');
    const first = await checkArea(dirs);
    assert.deepEqual(
      first.problems.map((p) => p.kind),
      ['index-damaged', 'not-indexed'],
    );
    assert.equal(first.encrypted, null, 'no config: blobs are not verified');
    assert.deepEqual(await rebuildIndex(dirs, first.scanned), { packs: 1, blobs: 1 });
    const second = await checkArea(dirs);
    assert.deepEqual(second.problems, []);
    assert.equal(second.indexedPacks, 1);
  });
});
