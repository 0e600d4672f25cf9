import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { blobTypeFromCode, blobTypeToCode, decodeIndex, encodeIndex, FormatError, type IndexEntry } from '../../format/index.js';

const badRecord = (e: unknown) => e instanceof FormatError && e.code === 'bad-record';
const entry: IndexEntry = { id: '1'.repeat(64), pack: '2'.repeat(64), type: 't', offset: 9, length: 100, plainLength: 90 };

describe('format: index pages', () => {
  it('round-trips a page in the documented JSON shape', () => {
    const page = { generation: 42, epoch: '9f3c', entries: [entry, { ...entry, id: '3'.repeat(64), type: 'd' as const, offset: 109 }] };
    const bytes = encodeIndex(page);
    assert.ok(bytes.toString('utf8').startsWith('{"kura":"index","v":1,"generation":42,"epoch":"9f3c","entries":[{"id":"111'));
    assert.deepEqual(decodeIndex(bytes), page);
    assert.deepEqual(decodeIndex(encodeIndex({ generation: 0, epoch: '0', entries: [] })), { generation: 0, epoch: '0', entries: [] });
  });

  it('refuses bad ids, offsets inside the pack header, unknown types and fields', () => {
    for (const bad of [
      { id: 'x' },
      { pack: 'A'.repeat(64) },
      { offset: 3 },
      { length: 0 },
      { type: 'x' },
      { extra: 1 },
      { plainLength: 2 ** 40 },
      { offset: 9.5 },
      { length: null },
      { id: null },
      { pack: 5 },
    ]) {
      const raw = Buffer.from(JSON.stringify({ kura: 'index', v: 1, generation: 1, epoch: '0', entries: [{ ...entry, ...bad }] }));
      assert.throws(() => decodeIndex(raw), badRecord, JSON.stringify(bad));
    }
    assert.throws(() => encodeIndex({ generation: -1, epoch: '0', entries: [] }), badRecord);
    for (const epoch of ['', 'G1', '0'.repeat(33), 7]) {
      const raw = Buffer.from(JSON.stringify({ kura: 'index', v: 1, generation: 1, epoch, entries: [] }));
      assert.throws(() => decodeIndex(raw), badRecord, JSON.stringify(epoch));
    }
  });

  it('maps blob types to the one-letter codes of trailers and the index', () => {
    assert.deepEqual([blobTypeToCode('data'), blobTypeToCode('tree')], ['d', 't']);
    assert.deepEqual([blobTypeFromCode('d'), blobTypeFromCode('t')], ['data', 'tree']);
  });
});
