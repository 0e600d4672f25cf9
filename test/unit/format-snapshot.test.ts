import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import {
  decodeSnapshotBody,
  decodeSnapshotEnvelope,
  encodeSnapshot,
  FormatError,
  generateKeys,
  isValidHost,
  snapshotIdOf,
  type FormatErrorCode,
  type SnapshotBody,
  type SnapshotMeta,
} from '../../format/index.js';

const failsWith = (code: FormatErrorCode) => (e: unknown) => e instanceof FormatError && e.code === code;

const meta: SnapshotMeta = { time: '2025-01-31T12:00:00.000Z', host: 'ann-laptop', type: 'incremental' };
const body: SnapshotBody = {
  tree: 'c'.repeat(64),
  paths: ['/home/ann', 'C:\\Users\\ann'],
  parent: 'd'.repeat(64),
  totals: {
    files: 10,
    dirs: 2,
    bytes: 12345,
    newFiles: 1,
    changedFiles: 2,
    unchangedFiles: 7,
    bytesRead: 500,
    bytesUploaded: 300,
    durationMs: 1500,
  },
};

/** Re-serialises a record with some envelope fields changed, as a server with no key could. */
function rewrite(bytes: Buffer, change: Record<string, unknown>): Buffer {
  return Buffer.from(JSON.stringify({ ...(JSON.parse(bytes.toString('utf8')) as object), ...change }));
}

describe('format: snapshot records', () => {
  it('round-trips a plaintext snapshot whose id is the SHA-256 of its bytes', () => {
    const { id, bytes } = encodeSnapshot(meta, body, null);
    assert.equal(id, createHash('sha256').update(bytes).digest('hex'));
    assert.equal(snapshotIdOf(bytes), id);
    const envelope = decodeSnapshotEnvelope(bytes);
    assert.deepEqual(
      { time: envelope.time, host: envelope.host, type: envelope.type, encrypted: envelope.encrypted },
      { ...meta, encrypted: false },
    );
    assert.deepEqual(decodeSnapshotBody(envelope, null), body);
    assert.ok(bytes.toString('utf8').startsWith('{"kura":"snapshot","v":1,"time":"2025-01-31T12:00:00.000Z","host":"ann-laptop"'));
  });

  it('seals the body of an encrypted snapshot but keeps the envelope readable without keys', () => {
    const keys = generateKeys();
    const { bytes } = encodeSnapshot(meta, { ...body, parent: null }, keys);
    assert.ok(!bytes.toString('utf8').includes('/home/ann'));
    const envelope = decodeSnapshotEnvelope(bytes);
    assert.equal(envelope.encrypted, true);
    assert.equal(envelope.host, 'ann-laptop');
    assert.equal(typeof envelope.body, 'string');
    assert.deepEqual(decodeSnapshotBody(envelope, keys), { ...body, parent: null });
  });

  it('gives wrong-key for an encrypted body read without a key or with another key', () => {
    const { bytes } = encodeSnapshot(meta, body, generateKeys());
    assert.throws(() => decodeSnapshotBody(decodeSnapshotEnvelope(bytes), null), failsWith('wrong-key'));
    assert.throws(() => decodeSnapshotBody(decodeSnapshotEnvelope(bytes), generateKeys()), failsWith('wrong-key'));
  });

  it('detects a re-dated, re-typed or moved encrypted snapshot', () => {
    const keys = generateKeys();
    const { bytes } = encodeSnapshot(meta, body, keys);
    for (const change of [{ time: '2020-01-01T00:00:00.000Z' }, { type: 'full' }, { host: 'other' }]) {
      assert.throws(
        () => decodeSnapshotBody(decodeSnapshotEnvelope(rewrite(bytes, change)), keys),
        failsWith('wrong-key'),
        JSON.stringify(change),
      );
    }
  });

  it('refuses bad host names, types, times and an encrypted flag that does not match the body', () => {
    for (const host of ['..', '.', 'a/b', '', 'x'.repeat(65), 'ünï']) {
      assert.equal(isValidHost(host), false, host);
      assert.throws(() => encodeSnapshot({ ...meta, host }, body, null), failsWith('bad-record'), host);
    }
    assert.equal(isValidHost('ann-laptop.home_1'), true);
    const { bytes } = encodeSnapshot(meta, body, null);
    for (const change of [{ type: 'weekly' }, { time: 'yesterday' }, { encrypted: true }, { v: 2 }, { extra: 1 }, { host: '..' }]) {
      assert.throws(() => decodeSnapshotEnvelope(rewrite(bytes, change)), failsWith('bad-record'), JSON.stringify(change));
    }
    assert.throws(
      () => decodeSnapshotEnvelope(rewrite(encodeSnapshot(meta, body, generateKeys()).bytes, { encrypted: false })),
      failsWith('bad-record'),
    );
  });

  it('refuses bodies without paths, with a bad tree id or with negative totals', () => {
    const bad: SnapshotBody[] = [
      { ...body, paths: [] },
      { ...body, tree: 'nope' },
      { ...body, totals: { ...body.totals, files: -1 } },
    ];
    for (const b of bad) assert.throws(() => encodeSnapshot(meta, b, null), failsWith('bad-record'));
  });
});
