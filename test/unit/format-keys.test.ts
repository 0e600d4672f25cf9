import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import {
  decodeKeyFile,
  encodeKeyFile,
  FormatError,
  generateKeys,
  keyRecordId,
  unwrapKeys,
  wrapKeys,
  type FormatErrorCode,
} from '../../format/index.js';

const failsWith = (code: FormatErrorCode) => (e: unknown) => e instanceof FormatError && e.code === code;

describe('format: master keys and key files', () => {
  it('generates two distinct random 32-byte keys', () => {
    const keys = generateKeys();
    assert.equal(keys.encKey.length, 32);
    assert.equal(keys.idKey.length, 32);
    assert.notDeepEqual(keys.encKey, keys.idKey);
    assert.notDeepEqual(generateKeys().encKey, keys.encKey);
  });

  it('round-trips a key file in the documented JSON shape', () => {
    const keys = generateKeys();
    const bytes = encodeKeyFile(keys);
    assert.deepEqual(Object.keys(JSON.parse(bytes.toString('utf8')) as object), ['kura', 'version', 'encKey', 'idKey']);
    assert.deepEqual(decodeKeyFile(bytes), keys);
    assert.deepEqual(decodeKeyFile(bytes.toString('utf8')), keys);
  });

  it('refuses key files with short keys, sloppy base64, extra fields or another version', () => {
    const good = JSON.parse(encodeKeyFile(generateKeys()).toString('utf8')) as Record<string, unknown>;
    const variants = [
      { ...good, encKey: Buffer.alloc(16).toString('base64') },
      { ...good, idKey: String(good.idKey).replace(/=$/, '') },
      { ...good, extra: 1 },
      { ...good, version: 2 },
      { ...good, kura: 'wrapped-key' },
    ];
    for (const v of variants) assert.throws(() => decodeKeyFile(JSON.stringify(v)), failsWith('bad-record'));
    assert.throws(() => decodeKeyFile('not json'), failsWith('bad-record'));
    assert.throws(() => decodeKeyFile(Buffer.from([0xff, 0xfe])), failsWith('bad-record'));
  });
});

describe('format: wrapped key records', () => {
  it('unwraps with the right passphrase and records the documented scrypt settings', async () => {
    const keys = generateKeys();
    const record = await wrapKeys(keys, 'correct horse battery staple');
    const json = JSON.parse(record.toString('utf8')) as Record<string, unknown>;
    assert.equal(json.kura, 'wrapped-key');
    assert.deepEqual([json.kdf, json.N, json.r, json.p], ['scrypt', 32768, 8, 1]);
    assert.equal(Buffer.from(String(json.nonce), 'base64').length, 12);
    assert.deepEqual(await unwrapKeys(record, 'correct horse battery staple'), keys);
  });

  it('refuses a wrong passphrase with wrong-key and a readable message', async () => {
    const record = await wrapKeys(generateKeys(), 'right');
    await assert.rejects(
      unwrapKeys(record, 'wrong'),
      (e: unknown) => failsWith('wrong-key')(e) && /passphrase does not open/.test((e as Error).message),
    );
  });

  it('opens a record with the same passphrase typed in NFD as in NFC', async () => {
    const keys = generateKeys();
    const record = await wrapKeys(keys, 'caf\u00e9 \u8535');
    assert.deepEqual(await unwrapKeys(record, 'cafe\u0301 \u8535'), keys);
  });

  it('gives wrong-key when the wrapped data was altered', async () => {
    const record = JSON.parse((await wrapKeys(generateKeys(), 'pw')).toString('utf8')) as Record<string, unknown>;
    const data = Buffer.from(String(record.data), 'base64');
    data[5] = (data[5] ?? 0) ^ 1;
    const altered = Buffer.from(JSON.stringify({ ...record, data: data.toString('base64') }));
    await assert.rejects(unwrapKeys(altered, 'pw'), failsWith('wrong-key'));
  });

  it('refuses malformed records and scrypt settings that would cost too much memory', async () => {
    const record = JSON.parse((await wrapKeys(generateKeys(), 'pw')).toString('utf8')) as Record<string, unknown>;
    for (const v of [
      { ...record, N: 2 ** 21 },
      { ...record, N: 30000 },
      { ...record, r: 16, N: 2 ** 20 },
      { ...record, kdf: 'pbkdf2' },
    ]) {
      await assert.rejects(unwrapKeys(Buffer.from(JSON.stringify(v)), 'pw'), failsWith('bad-record'));
    }
    await assert.rejects(unwrapKeys(Buffer.from('{}'), 'pw'), failsWith('bad-record'));
  });

  it('refuses to wrap under an empty passphrase', async () => {
    await assert.rejects(wrapKeys(generateKeys(), ''), failsWith('wrong-key'));
  });

  it('names a record by the SHA-256 of its bytes', async () => {
    const record = await wrapKeys(generateKeys(), 'pw');
    assert.equal(keyRecordId(record), createHash('sha256').update(record).digest('hex'));
  });
});
