import { randomBytes, scrypt } from 'node:crypto';
import { z } from 'zod';
import { FormatError } from './errors.js';
import { jsonBytes, sha256Hex } from './json.js';
import { base64, decodeJson } from './schema.js';
import { NONCE_SIZE, open, seal, TAG_SIZE } from './sealed-box.js';

/** The two random master keys of an encrypted repository (README, "Keys"). */
export interface MasterKeys {
  /** AES-256-GCM key for blobs and snapshot bodies. */
  encKey: Buffer;
  /** HMAC-SHA-256 key for blob ids. */
  idKey: Buffer;
}

const KEY_SIZE = 32;
const SALT_SIZE = 32;

/** What writers use: 32 MiB of memory, about 0.1 s on a laptop. */
const SCRYPT_WRITE = { N: 32768, r: 8, p: 1 } as const;

const key32 = base64.refine((s) => Buffer.from(s, 'base64').length === KEY_SIZE, 'must hold 32 bytes');

const KeyFileSchema = z.strictObject({ kura: z.literal('key'), version: z.literal(1), encKey: key32, idKey: key32 });

// Readers accept stronger settings than writers use, within bounds a hostile record cannot abuse.
const WrappedSchema = z.strictObject({
  kura: z.literal('wrapped-key'),
  version: z.literal(1),
  kdf: z.literal('scrypt'),
  N: z
    .number()
    .int()
    .min(2 ** 14)
    .max(2 ** 20)
    .refine((n) => (n & (n - 1)) === 0, 'must be a power of two'),
  r: z.number().int().min(1).max(16),
  p: z.number().int().min(1).max(4),
  salt: base64.refine((s) => Buffer.from(s, 'base64').length >= 16, 'must hold at least 16 bytes'),
  nonce: base64.refine((s) => Buffer.from(s, 'base64').length === NONCE_SIZE, 'must hold 12 bytes'),
  data: base64.refine((s) => Buffer.from(s, 'base64').length > TAG_SIZE, 'is too short to hold a sealed key'),
});
type Wrapped = z.infer<typeof WrappedSchema>;

const MAX_SCRYPT_MEMORY = 256 * 1024 * 1024;

/** Two fresh random keys. */
export function generateKeys(): MasterKeys {
  return { encKey: randomBytes(KEY_SIZE), idKey: randomBytes(KEY_SIZE) };
}

/** The key file's bytes (what `kura key export` writes). */
export function encodeKeyFile(keys: MasterKeys): Buffer {
  checkKeys(keys);
  return jsonBytes({ kura: 'key', version: 1, encKey: keys.encKey.toString('base64'), idKey: keys.idKey.toString('base64') });
}

/** Reads a key file; throws FormatError('bad-record') when it is not one. */
export function decodeKeyFile(bytes: Uint8Array | string): MasterKeys {
  const raw = typeof bytes === 'string' ? Buffer.from(bytes, 'utf8') : bytes;
  const file = decodeJson(KeyFileSchema, raw, 'bad-record', 'the key file');
  return { encKey: Buffer.from(file.encKey, 'base64'), idKey: Buffer.from(file.idKey, 'base64') };
}

/** A wrapped key record: the key file sealed under a key derived from the passphrase by scrypt. */
export async function wrapKeys(keys: MasterKeys, passphrase: string): Promise<Buffer> {
  const salt = randomBytes(SALT_SIZE);
  const wrappingKey = await deriveKey(passphrase, salt, SCRYPT_WRITE);
  const box = seal(wrappingKey, [encodeKeyFile(keys)]);
  const nonce = box.subarray(0, NONCE_SIZE);
  const data = box.subarray(NONCE_SIZE);
  return jsonBytes({
    kura: 'wrapped-key',
    version: 1,
    kdf: 'scrypt',
    ...SCRYPT_WRITE,
    salt: salt.toString('base64'),
    nonce: nonce.toString('base64'),
    data: data.toString('base64'),
  });
}

/**
 * Opens a wrapped key record. Throws FormatError('wrong-key') when the passphrase does not open it,
 * FormatError('bad-record') when the record is malformed.
 */
export async function unwrapKeys(record: Uint8Array, passphrase: string): Promise<MasterKeys> {
  const wrapped = decodeJson(WrappedSchema, record, 'bad-record', 'the wrapped key record');
  if (128 * wrapped.N * wrapped.r > MAX_SCRYPT_MEMORY) {
    throw new FormatError('bad-record', 'the wrapped key record asks scrypt for more than 256 MiB of memory');
  }
  const wrappingKey = await deriveKey(passphrase, Buffer.from(wrapped.salt, 'base64'), wrapped);
  const box = Buffer.concat([Buffer.from(wrapped.nonce, 'base64'), Buffer.from(wrapped.data, 'base64')]);
  const keyFile = open(wrappingKey, box);
  if (!keyFile) throw new FormatError('wrong-key', 'the passphrase does not open this key');
  return decodeKeyFile(keyFile);
}

/** A wrapped key record's id: SHA-256 hex of its bytes (its name under /.kura/keys/). */
export function keyRecordId(bytes: Uint8Array): string {
  return sha256Hex(bytes);
}

function deriveKey(passphrase: string, salt: Buffer, cost: Pick<Wrapped, 'N' | 'r' | 'p'>): Promise<Buffer> {
  if (passphrase.length === 0) return Promise.reject(new FormatError('wrong-key', 'an empty passphrase cannot protect a key'));
  // NFC: the same words typed through different input methods must derive the same key.
  const secret = Buffer.from(passphrase.normalize('NFC'), 'utf8');
  // Node refuses scrypt when 128·N·r exceeds maxmem (32 MiB by default, exactly our write setting).
  const maxmem = 2 * 128 * cost.N * cost.r * cost.p + 1024 * 1024;
  return new Promise((resolve, reject) => {
    scrypt(secret, salt, KEY_SIZE, { N: cost.N, r: cost.r, p: cost.p, maxmem }, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

function checkKeys(keys: MasterKeys): void {
  if (keys.encKey.length !== KEY_SIZE || keys.idKey.length !== KEY_SIZE) {
    throw new FormatError('bad-record', 'master keys are 32 bytes each');
  }
}
