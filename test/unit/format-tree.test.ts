import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { decodeTree, encodeTree, FormatError, type TreeEntry } from '../../format/index.js';

const badTree = (e: unknown) => e instanceof FormatError && e.code === 'bad-tree';
const ID = 'a'.repeat(64);

const file = (name: string, extra: Partial<TreeEntry> = {}): TreeEntry => ({
  name,
  type: 'file',
  mode: 0o644,
  mtimeNs: '1700000000123456789',
  size: 5,
  content: [ID],
  ...extra,
});

describe('format: trees', () => {
  it('round-trips files, directories and symlinks', () => {
    const entries: TreeEntry[] = [
      file('a.txt', { ino: 1234 }),
      { name: 'docs', type: 'dir', mode: 0o755, mtimeNs: '-5', size: 0, subtree: 'b'.repeat(64) },
      { name: 'empty', type: 'file', mode: 0o600, mtimeNs: '0', size: 0, content: [] },
      { name: 'link', type: 'symlink', mode: 0o777, mtimeNs: '1', size: 5, target: 'a.txt' },
    ];
    assert.deepEqual(decodeTree(encodeTree(entries)), entries);
  });

  it('writes canonical bytes: sorted by UTF-8 bytes, fixed key order, undefined fields left out', () => {
    // UTF-16 order puts the emoji (D83D…) before U+FF61; UTF-8 byte order (F0… vs EF…) does not.
    const names = ['\u{1F600}', '\uFF61', 'B', 'a', 'é'];
    const shuffled = names.map((n) => file(n));
    const reordered = [...shuffled]
      .reverse()
      .map((e) => ({ content: e.content, size: e.size, name: e.name, type: e.type, mode: e.mode, mtimeNs: e.mtimeNs, ino: undefined }));
    const bytes = encodeTree(shuffled);
    assert.deepEqual(encodeTree(reordered), bytes);
    assert.deepEqual(
      decodeTree(bytes).map((e) => e.name),
      ['B', 'a', 'é', '\uFF61', '\u{1F600}'],
    );
    assert.ok(
      bytes
        .toString('utf8')
        .startsWith('{"v":1,"entries":[{"name":"B","type":"file","mode":420,"mtimeNs":"1700000000123456789","size":5,"content":['),
    );
  });

  it('refuses ".", "..", empty names, slashes and NUL, on encoding and on decoding', () => {
    for (const name of ['..', '.', '', 'a/b', 'a\0b', '\uD800x']) {
      assert.throws(() => encodeTree([file(name)]), badTree, JSON.stringify(name));
      const raw = Buffer.from(JSON.stringify({ v: 1, entries: [file(name)] }));
      assert.throws(() => decodeTree(raw), badTree, JSON.stringify(name));
    }
  });

  it('refuses duplicate names, on encoding and on decoding', () => {
    assert.throws(
      () => encodeTree([file('x'), file('x')]),
      (e: unknown) => badTree(e) && /twice/.test((e as Error).message),
    );
    assert.throws(() => decodeTree(Buffer.from(JSON.stringify({ v: 1, entries: [file('x'), file('x')] }))), badTree);
  });

  it('refuses unsorted entries when decoding', () => {
    assert.throws(
      () => decodeTree(Buffer.from(JSON.stringify({ v: 1, entries: [file('b'), file('a')] }))),
      (e: unknown) => badTree(e) && /not sorted/.test((e as Error).message),
    );
  });

  it('requires the field each kind needs and refuses the others', () => {
    const bad: TreeEntry[] = [
      { name: 'f', type: 'file', mode: 0, mtimeNs: '0', size: 0 },
      { name: 'd', type: 'dir', mode: 0, mtimeNs: '0', size: 0 },
      { name: 's', type: 'symlink', mode: 0, mtimeNs: '0', size: 0 },
      { name: 'f', type: 'file', mode: 0, mtimeNs: '0', size: 0, content: [], target: 'x' },
      { name: 'd', type: 'dir', mode: 0, mtimeNs: '0', size: 0, subtree: ID, content: [ID] },
    ];
    for (const e of bad) assert.throws(() => encodeTree([e]), badTree, JSON.stringify(e));
  });

  it('refuses bad modes, times, sizes, ids, unknown fields and other versions', () => {
    for (const extra of [{ mode: 0o10644 }, { mtimeNs: '1.5' }, { mtimeNs: '007' }, { size: -1 }, { content: ['zz'] }, { ino: 2 ** 60 }]) {
      assert.throws(() => encodeTree([file('x', extra)]), badTree, JSON.stringify(extra));
    }
    assert.throws(() => decodeTree(Buffer.from(JSON.stringify({ v: 1, entries: [{ ...file('x'), owner: 'me' }] }))), badTree);
    assert.throws(() => decodeTree(Buffer.from(JSON.stringify({ v: 2, entries: [] }))), badTree);
    assert.throws(() => decodeTree(Buffer.from([0x7b, 0xff])), badTree);
  });

  it('refuses every single-field corruption of a valid entry (the fast check never accepts what the schema refuses)', () => {
    const id = 'ab'.repeat(32);
    const valid: Record<string, unknown>[] = [
      { name: 'f', type: 'file', mode: 0o644, mtimeNs: '1700000000000000000', size: 3, ino: 7, content: [id] },
      { name: 'd', type: 'dir', mode: 0o755, mtimeNs: '-5', size: 0, subtree: id },
      { name: 'l', type: 'symlink', mode: 0o777, mtimeNs: '0', size: 1, target: 'x' },
    ];
    const bad: Record<string, unknown[]> = {
      name: ['', '.', '..', 'a/b', 'a\0b', '\ud800', 'x'.repeat(1025), 5, null],
      type: ['fifo', 1, null],
      mode: [-1, 0o10000, 1.5, '644', null],
      mtimeNs: ['01', '1.5', 'x', '', 5, '1'.repeat(26)],
      size: [-1, 1.5, 2 ** 53, '3', null],
      ino: [-1, 0.5, null, 'x'],
      content: ['x', [id.toUpperCase()], ['ab'], null],
      subtree: ['x', null, 5],
      target: ['', 'a\0', '\udc00', 5, null],
      owner: ['me'],
    };
    for (const entry of valid) {
      assert.equal(decodeTree(Buffer.from(JSON.stringify({ v: 1, entries: [entry] })))[0]!.name, entry.name);
      for (const [key, values] of Object.entries(bad)) {
        for (const v of values) {
          const broken = { ...entry, [key]: v };
          const bytes = Buffer.from(JSON.stringify({ v: 1, entries: [broken] }));
          assert.throws(() => decodeTree(bytes), badTree, `${String(entry.type)} with ${key}=${JSON.stringify(v)}`);
        }
      }
    }
  });
});
