import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { decodeConfig, DEFAULT_CHUNKER, encodeConfig, FormatError } from '../../format/index.js';

const badRecord = (e: unknown) => e instanceof FormatError && e.code === 'bad-record';

describe('format: repository config', () => {
  it('round-trips a config, filling in the creation time and the default chunker', () => {
    const before = Date.now();
    const config = decodeConfig(encodeConfig({ encrypted: true }));
    assert.equal(config.encrypted, true);
    assert.deepEqual(config.chunker, DEFAULT_CHUNKER);
    assert.ok(Date.parse(config.created) >= before - 1000);
  });

  it('keeps given values and writes the documented JSON', () => {
    const input = { encrypted: false, created: '2025-01-31T12:00:00.000Z', chunker: { min: 1024, avg: 4096, max: 16384 } };
    const bytes = encodeConfig(input);
    assert.equal(
      bytes.toString('utf8'),
      '{"kura":"config","version":2,"encrypted":false,"created":"2025-01-31T12:00:00.000Z","chunker":{"min":1024,"avg":4096,"max":16384}}',
    );
    assert.deepEqual(decodeConfig(bytes), { ...input, boundIds: true });
  });

  it('reads a version 1 config as one whose blob boxes do not bind their ids', () => {
    const v1 =
      '{"kura":"config","version":1,"encrypted":true,"created":"2025-01-31T12:00:00.000Z","chunker":{"min":1024,"avg":4096,"max":16384}}';
    assert.equal(decodeConfig(Buffer.from(v1)).boundIds, false);
    assert.throws(() => decodeConfig(Buffer.from(v1.replace('"version":1', '"version":3'))), badRecord);
  });

  it('refuses chunker sizes out of order or too large, on writing and on reading', () => {
    assert.throws(() => encodeConfig({ encrypted: true, chunker: { min: 4096, avg: 4096, max: 8192 } }), badRecord);
    assert.throws(() => encodeConfig({ encrypted: true, chunker: { min: 1024, avg: 4096, max: 64 * 1024 * 1024 } }), badRecord);
    const text = encodeConfig({ encrypted: true }).toString('utf8').replace(`"min":${DEFAULT_CHUNKER.min}`, '"min":2097152');
    assert.throws(() => decodeConfig(Buffer.from(text)), badRecord);
  });

  it('keeps the normalization level of new repositories, leaves it out for older ones, and refuses one out of range', () => {
    assert.equal(decodeConfig(encodeConfig({ encrypted: true })).chunker.normalization, 0);
    const older = encodeConfig({ encrypted: true, chunker: { min: 256 * 1024, avg: 1024 * 1024, max: 4 * 1024 * 1024 } });
    assert.ok(!older.toString('utf8').includes('normalization'));
    assert.equal(decodeConfig(older).chunker.normalization, undefined);
    for (const level of ['4', '-1', '1.5', '"0"']) {
      const text = encodeConfig({ encrypted: true }).toString('utf8').replace('"normalization":0', `"normalization":${level}`);
      assert.throws(() => decodeConfig(Buffer.from(text)), badRecord, level);
    }
  });

  it('refuses other versions, unknown fields, local times and non-JSON', () => {
    const good = JSON.parse(encodeConfig({ encrypted: true }).toString('utf8')) as Record<string, unknown>;
    for (const v of [
      { ...good, version: 3 },
      { ...good, extra: true },
      { ...good, created: '2025-01-31T12:00:00+09:00' },
      { ...good, encrypted: 'yes' },
    ]) {
      assert.throws(() => decodeConfig(Buffer.from(JSON.stringify(v))), badRecord);
    }
    assert.throws(() => decodeConfig(Buffer.from('\ufeff' + JSON.stringify(good))), badRecord);
    assert.throws(() => decodeConfig(Buffer.from('{')), badRecord);
  });
});
