import { z } from 'zod';
import { FormatError } from './errors.js';
import { jsonBytes, sha256Hex } from './json.js';
import { base64, count, decodeJson, hex64, isoTime, validate } from './schema.js';
import type { MasterKeys } from './keys.js';
import { BOX_OVERHEAD, open, seal } from './sealed-box.js';

/**
 * The backup types of the patent: a copy is a full that does not reset the baseline; a baseline
 * (`kura baseline mark`) records a known image's files by reference without uploading them.
 */
export type SnapshotType = 'full' | 'incremental' | 'differential' | 'copy' | 'baseline';

/** The envelope fields that stay readable without keys (the gateway lists and sorts by them). */
export interface SnapshotMeta {
  time: string;
  host: string;
  type: SnapshotType;
}

export interface SnapshotTotals {
  files: number;
  dirs: number;
  bytes: number;
  newFiles: number;
  changedFiles: number;
  unchangedFiles: number;
  bytesRead: number;
  bytesUploaded: number;
  durationMs: number;
}

/** What a snapshot commits: the root tree, what was backed up, what it was compared with, the figures. */
export interface SnapshotBody {
  tree: string;
  paths: string[];
  parent: string | null;
  totals: SnapshotTotals;
}

/** A decoded envelope; body is the plaintext body, or the base64 sealed box when encrypted. */
export interface SnapshotEnvelope extends SnapshotMeta {
  encrypted: boolean;
  body: SnapshotBody | string;
}

const HOST = /^[A-Za-z0-9._-]{1,64}$/;

/** A host name is 1-64 of [A-Za-z0-9._-] and, being a path segment, not "." or "..". */
export function isValidHost(host: string): boolean {
  return HOST.test(host) && host !== '.' && host !== '..';
}

const TotalsSchema = z.strictObject({
  files: count,
  dirs: count,
  bytes: count,
  newFiles: count,
  changedFiles: count,
  unchangedFiles: count,
  bytesRead: count,
  bytesUploaded: count,
  durationMs: count,
});

const BodySchema = z.strictObject({
  tree: hex64,
  paths: z
    .array(
      z
        .string()
        .min(1)
        .refine((p) => !p.includes('\0'), 'a path cannot hold NUL'),
    )
    .min(1, 'a snapshot covers at least one path'),
  parent: hex64.nullable(),
  totals: TotalsSchema,
});

const MetaSchema = z.strictObject({
  time: isoTime,
  host: z.string().refine(isValidHost, 'a host name is 1-64 letters, digits, ".", "_" or "-", and not "." or ".."'),
  type: z.enum(['full', 'incremental', 'differential', 'copy', 'baseline']),
});

const EnvelopeSchema = z
  .strictObject({
    kura: z.literal('snapshot'),
    v: z.literal(1),
    ...MetaSchema.shape,
    encrypted: z.boolean(),
    body: z.union([BodySchema, base64.refine((s) => Buffer.from(s, 'base64').length > BOX_OVERHEAD, 'is too short to be a sealed body')]),
  })
  .refine(
    (e) => e.encrypted === (typeof e.body === 'string'),
    'an encrypted snapshot has a sealed (string) body, a plaintext one an object',
  );

/**
 * A snapshot record's bytes and id (SHA-256 hex of the bytes, its name under /.kura/snapshots/<host>/).
 * With keys the body is sealed under encKey, bound to time, host and type. Throws
 * FormatError('bad-record') for invalid fields.
 */
export function encodeSnapshot(meta: SnapshotMeta, body: SnapshotBody, keys: MasterKeys | null): { id: string; bytes: Buffer } {
  const m = validate(MetaSchema, { time: meta.time, host: meta.host, type: meta.type }, 'bad-record', 'the snapshot');
  const b = validate(BodySchema, body, 'bad-record', 'the snapshot body');
  const sealed = keys ? seal(keys.encKey, [jsonBytes(b)], associatedData(m)).toString('base64') : b;
  const bytes = jsonBytes({ kura: 'snapshot', v: 1, time: m.time, host: m.host, type: m.type, encrypted: keys !== null, body: sealed });
  return { id: sha256Hex(bytes), bytes };
}

/** The envelope, readable without keys. Throws FormatError('bad-record') when malformed. */
export function decodeSnapshotEnvelope(bytes: Uint8Array): SnapshotEnvelope {
  const e = decodeJson(EnvelopeSchema, bytes, 'bad-record', 'the snapshot record');
  return { time: e.time, host: e.host, type: e.type, encrypted: e.encrypted, body: e.body };
}

/**
 * The body of a decoded envelope. Throws FormatError 'wrong-key' when an encrypted body has no key
 * or does not open with it (wrong key, or the envelope or body was altered), 'bad-record' when malformed.
 */
export function decodeSnapshotBody(envelope: SnapshotEnvelope, keys: MasterKeys | null): SnapshotBody {
  if (typeof envelope.body !== 'string') return envelope.body;
  if (!keys) throw new FormatError('wrong-key', 'this snapshot is encrypted: its key is needed to read it');
  const box = Buffer.from(envelope.body, 'base64');
  const plain = open(keys.encKey, box, associatedData(envelope));
  if (!plain)
    throw new FormatError(
      'wrong-key',
      `the snapshot of ${envelope.host} at ${envelope.time} does not open with this key (a wrong key, or the record was altered)`,
    );
  return decodeJson(BodySchema, plain, 'bad-record', 'the snapshot body');
}

/** A snapshot record's id: SHA-256 hex of its bytes. */
export function snapshotIdOf(bytes: Uint8Array): string {
  return sha256Hex(bytes);
}

/** Binds the readable envelope to the sealed body (README, "Snapshot records"). */
function associatedData(meta: SnapshotMeta): Buffer {
  return Buffer.from(`kura-snapshot-v1${JSON.stringify([meta.time, meta.host, meta.type])}`, 'utf8');
}
