import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { BrowseError } from '../../browse/errors.js';
import type { SnapshotRef, SnapshotSource } from '../../browse/source.js';
import { NOTICE_NAME, snapshotFolderName, SnapshotView, type ViewNode } from '../../browse/view.js';
import { encodeTree, type TreeEntry } from '../../format/index.js';

/** Blobs in memory, ids by SHA-256 as in a plaintext repository; counts reads. */
class MemorySource implements SnapshotSource {
  readonly blobs = new Map<string, Buffer>();
  refs: SnapshotRef[] = [];
  reads = 0;

  put(bytes: Buffer): string {
    const id = createHash('sha256').update(bytes).digest('hex');
    this.blobs.set(id, bytes);
    return id;
  }

  async snapshots(): Promise<SnapshotRef[]> {
    return this.refs;
  }
  async plainLength(id: string): Promise<number | undefined> {
    return this.blobs.get(id)?.length;
  }
  async read(id: string): Promise<Buffer> {
    this.reads++;
    const b = this.blobs.get(id);
    if (!b) throw new Error(`blob ${id.slice(0, 12)} is missing`);
    return b;
  }
}

const file = (name: string, content: string[], size: number): TreeEntry => ({
  name,
  type: 'file',
  mode: 0o644,
  mtimeNs: '1700000000000000000',
  size,
  content,
});

function fixture() {
  const src = new MemorySource();
  const parts = [Buffer.from('hello '), Buffer.from('big '), Buffer.from('world')];
  const ids = parts.map((p) => src.put(p));
  const inner = src.put(encodeTree([file('deep.txt', [ids[0]!], 6)]));
  const root = src.put(
    encodeTree([
      file('a.txt', ids, 15),
      { name: 'sub', type: 'dir', mode: 0o755, mtimeNs: '1700000000000000000', size: 0, subtree: inner },
      { name: 'link', type: 'symlink', mode: 0o777, mtimeNs: '1700000000000000000', size: 5, target: 'a.txt' },
      file('Cafe\u0301.txt', [ids[1]!], 4),
      file('lost.bin', ['f'.repeat(64)], 10),
    ]),
  );
  const top = src.put(encodeTree([{ name: 'data', type: 'dir', mode: 0o755, mtimeNs: '1700000000000000000', size: 0, subtree: root }]));
  src.refs = [
    { id: 'a'.repeat(64), host: 'pc1', time: '2026-11-26T07:33:00.120Z', tree: top },
    { id: 'b'.repeat(64), host: 'pc1', time: '2026-11-26T07:33:00.900Z', tree: top },
    { id: 'c'.repeat(64), host: 'laptop', time: '2026-11-25T10:00:00.000Z', tree: null },
  ];
  return { src, view: new SnapshotView(src) };
}

async function readAll(view: SnapshotView, node: ViewNode, start = 0, end = node.size - 1): Promise<string> {
  const parts: Buffer[] = [];
  for await (const chunk of await view.open(node, start, end)) parts.push(chunk);
  return Buffer.concat(parts).toString();
}

describe('browse/view: the snapshot tree over a source', () => {
  it('names snapshot folders by their time in ISO 8601 basic format; a same-second twin gets its id', async () => {
    assert.equal(snapshotFolderName('2026-11-26T07:33:00.120Z'), '20261126T073300Z');
    const { view } = fixture();
    const root = (await view.resolve([]))!;
    assert.deepEqual(
      (await view.list(root)).map((n) => n.name),
      ['laptop', 'pc1'],
    );
    const pc1 = (await view.resolve(['pc1']))!;
    assert.deepEqual(
      (await view.list(pc1)).map((n) => n.name),
      ['20261126T073300Z', `20261126T073300Z-${'b'.repeat(8)}`],
    );
  });

  it("gives each snapshot's folder name by id, the same names the host's folder lists (the console links with them)", async () => {
    const { view } = fixture();
    const names = await view.folderNames('pc1');
    assert.deepEqual(
      [...names],
      [
        ['a'.repeat(64), '20261126T073300Z'],
        ['b'.repeat(64), `20261126T073300Z-${'b'.repeat(8)}`],
      ],
    );
    for (const name of names.values()) assert.ok(await view.resolve(['pc1', name]));
    assert.equal((await view.folderNames('nobody')).size, 0);
  });

  it('lists a folder from its tree once, leaves symbolic links out, and finds NFC names for NFD entries', async () => {
    const { src, view } = fixture();
    const data = (await view.resolve(['pc1', '20261126T073300Z', 'data']))!;
    const names = (await view.list(data)).map((n) => n.name);
    assert.deepEqual(
      names,
      ['Cafe\u0301.txt', 'a.txt', 'lost.bin', 'sub'].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))),
    );
    const reads = src.reads;
    await view.list(data);
    await view.resolve(['pc1', '20261126T073300Z', 'data', 'a.txt']);
    assert.equal(src.reads, reads, 'a cached tree costs no read');
    assert.ok(await view.resolve(['pc1', '20261126T073300Z', 'data', 'Café.txt'.normalize('NFC')]));
    assert.equal(await view.resolve(['pc1', '20261126T073300Z', 'data', 'link']), null);
    assert.equal(await view.resolve(['pc1', 'nope']), null);
  });

  it('reads any byte range across blob boundaries', async () => {
    const { view } = fixture();
    const a = (await view.resolve(['pc1', '20261126T073300Z', 'data', 'a.txt']))!;
    assert.equal(await readAll(view, a), 'hello big world');
    for (let start = 0; start < 15; start++)
      for (let end = start; end < 15; end++) assert.equal(await readAll(view, a, start, end), 'hello big world'.slice(start, end + 1));
    assert.match(a.etag, /^"[0-9a-f]{32}"$/);
  });

  it('refuses before the first byte a file whose blob the repository lacks: snapshot-damaged', async () => {
    const { view } = fixture();
    const lost = (await view.resolve(['pc1', '20261126T073300Z', 'data', 'lost.bin']))!;
    await assert.rejects(
      view.open(lost, 0, 9),
      (err: unknown) => err instanceof BrowseError && err.status === 500 && /blob ffffffffffff/.test(err.message),
    );
  });

  it('shows an unreadable (encrypted) snapshot as one notice file about kura mount', async () => {
    const { view } = fixture();
    const folder = (await view.resolve(['laptop', '20261125T100000Z']))!;
    const members = await view.list(folder);
    assert.deepEqual(
      members.map((n) => n.name),
      [NOTICE_NAME],
    );
    assert.match(await readAll(view, members[0]!), /kura mount/);
  });
});
