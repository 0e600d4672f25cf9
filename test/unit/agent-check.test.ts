import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { affectedPaths, isDamaged, runCheck } from '../../agent/check.js';
import type { Remote } from '../../agent/remote.js';
import { Repository } from '../../agent/repository.js';
import { packPath } from '../../agent/trees.js';
import { damageLines } from '../../cli/check-commands.js';
import {
  BlobCodec,
  blobTypeToCode,
  encodeIndex,
  encodeSnapshot,
  encodeTree,
  PackBuilder,
  type IndexEntry,
  type TreeEntry,
} from '../../format/index.js';

/** The gateway in memory: files by path; a range past the end gets the bytes there are, as the gateway answers. */
class MemoryRemote implements Remote {
  readonly files = new Map<string, Buffer>();
  index: IndexEntry[] = [];

  getFile(path: string, range?: { start: number; end: number }): Promise<Buffer | null> {
    const bytes = this.files.get(path);
    return Promise.resolve(bytes ? (range ? bytes.subarray(range.start, range.end + 1) : bytes) : null);
  }
  putFile(path: string, bytes: Buffer): Promise<void> {
    this.files.set(path, bytes);
    return Promise.resolve();
  }
  list(path: string): Promise<string[]> {
    const names = [...this.files.keys()].filter((p) => p.startsWith(path)).map((p) => p.slice(path.length).split('/')[0]!);
    return Promise.resolve([...new Set(names)]);
  }
  sizes(path: string): Promise<Map<string, number>> {
    return Promise.resolve(new Map([...this.files].filter(([p]) => p.startsWith(path)).map(([p, b]) => [p.slice(path.length), b.length])));
  }
  getIndex(): Promise<Buffer> {
    return Promise.resolve(encodeIndex({ generation: 1, epoch: '0', entries: this.index }));
  }
  remove(path: string): Promise<boolean> {
    return Promise.resolve(this.files.delete(path));
  }
  move(): Promise<void> {
    return Promise.reject(new Error('check never moves packs'));
  }
}

const codec = new BlobCodec(null);
const file = (name: string, content: string[]): TreeEntry => ({ name, type: 'file', mode: 0o644, mtimeNs: '0', size: 1, content });
const dir = (name: string, subtree: string): TreeEntry => ({ name, type: 'dir', mode: 0o755, mtimeNs: '0', size: 0, subtree });

/**
 * A plaintext repository with one snapshot of  docs/{a.bin: [d1], sub/{b.bin: [d2, d1]}}: the data
 * blobs in one pack, the trees in another.
 */
async function fixture() {
  const remote = new MemoryRemote();
  await Repository.init(remote, { plaintext: true });
  const [d1, d2] = [randomBytes(3000), randomBytes(4000)];
  const [id1, id2] = [codec.id(d1), codec.id(d2)];
  const sub = encodeTree([file('b.bin', [id2, id1])]);
  const docs = encodeTree([file('a.bin', [id1]), dir('sub', codec.id(sub))]);
  const root = encodeTree([dir('docs', codec.id(docs))]);
  const data = addPack(remote, [
    ['data', d1],
    ['data', d2],
  ]);
  const trees = addPack(remote, [
    ['tree', sub],
    ['tree', docs],
    ['tree', root],
  ]);
  const totals = {
    files: 2,
    dirs: 2,
    bytes: 0,
    newFiles: 2,
    changedFiles: 0,
    unchangedFiles: 0,
    bytesRead: 0,
    bytesUploaded: 0,
    durationMs: 0,
  };
  const snap = encodeSnapshot(
    { time: '2026-01-01T00:00:00.000Z', host: 'pc1', type: 'full' },
    { tree: codec.id(root), paths: ['/docs'], parent: null, totals },
    null,
  );
  await remote.putFile(`/.kura/snapshots/pc1/${snap.id}`, snap.bytes);
  return { remote, data, trees, ids: { d1: id1, d2: id2, sub: codec.id(sub) } };
}

function addPack(remote: MemoryRemote, blobs: ['data' | 'tree', Buffer][]): { id: string; bytes: Buffer } {
  const builder = new PackBuilder();
  for (const [type, plain] of blobs) builder.add(codec.id(plain), type, codec.encode(plain), plain.length);
  const { id, bytes, entries } = builder.finish();
  remote.files.set(packPath(id), bytes);
  remote.index.push(...entries.map((e) => ({ ...e, pack: id, type: blobTypeToCode(e.type) })));
  return { id, bytes };
}

async function check(remote: MemoryRemote, readData = true) {
  return runCheck(await Repository.open(remote, {}), { readData });
}

describe('agent: kura check', () => {
  it('finds nothing wrong in an intact repository, and reads every blob once with readData', async () => {
    const { remote } = await fixture();
    const report = await check(remote);
    assert.equal(isDamaged(report), false);
    assert.deepEqual([report.snapshots, report.trees, report.dataBlobs, report.blobsRead], [1, 3, 2, 5]);
    assert.deepEqual(damageLines(report), []);
  });

  it('a flipped byte in a data blob: that blob, its pack, and every file that uses it', async () => {
    const { remote, data, ids } = await fixture();
    const entry = remote.index.find((e) => e.id === ids.d1)!;
    data.bytes[entry.offset + 100]! ^= 1;
    const report = await check(remote);
    assert.deepEqual(
      report.damaged.map((d) => [d.id, d.pack]),
      [[ids.d1, data.id]],
    );
    assert.deepEqual(report.affected[0]?.paths, ['docs/a.bin', 'docs/sub/b.bin']);
    const light = await check(remote, false);
    assert.equal(isDamaged(light), false, 'without readData the data blobs are only located');
    const lines = damageLines(report);
    assert.equal(lines[0], `Damaged pack ${data.id}:`);
    assert.match(lines[1]!, new RegExp(`^  data blob ${ids.d1}: `));
  });

  it('a missing pack, a blob the index lacks, and a lost folder are all named', async () => {
    const { remote, data, trees, ids } = await fixture();
    remote.files.delete(packPath(data.id));
    let report = await check(remote, false);
    assert.ok(report.damaged.every((d) => d.pack === data.id && /missing on the gateway/.test(d.reason)));
    assert.deepEqual(report.affected[0]?.paths, ['docs/a.bin', 'docs/sub/b.bin']);
    remote.index = remote.index.filter((e) => e.id !== ids.sub);
    report = await check(remote, false);
    assert.ok(report.damaged.some((d) => d.id === ids.sub && d.pack === null && d.type === 'tree'));
    assert.deepEqual(report.affected[0]?.paths, ['docs/a.bin', 'docs/sub/']);
    remote.files.set(packPath(trees.id), trees.bytes.subarray(0, 20));
    report = await check(remote, false);
    assert.deepEqual(report.affected[0]?.paths, ['/'], 'a truncated tree pack loses the whole snapshot');
    assert.match(damageLines(report).join('\n'), /the whole snapshot: its root folder is lost/);
  });

  it('affectedPaths walks only the trees in memory', () => {
    const trees = new Map<string, TreeEntry[]>([
      ['r', [dir('a', 's'), file('x', ['1', '2']), dir('gone', 'lost')]],
      ['s', [file('y', ['2']), file('z', ['3'])]],
    ]);
    const bad = new Map([['2', { id: '2', type: 'data' as const, pack: null, reason: '' }]]);
    assert.deepEqual(affectedPaths({ trees, bad }, 'r'), ['a/y', 'x', 'gone/']);
    assert.deepEqual(affectedPaths({ trees, bad }, 'nowhere'), ['/']);
  });
});
