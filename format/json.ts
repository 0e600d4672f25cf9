import { createHash } from 'node:crypto';
import { z } from 'zod';
import { FormatError, type FormatErrorCode } from './errors.js';

/** Shared pieces of every JSON record: strict UTF-8, zod validation into FormatError, ids, base64. */

// fatal: invalid UTF-8 would otherwise turn into U+FFFD and change names silently.
// ignoreBOM: a BOM stays in the text, where JSON.parse refuses it, as the README promises.
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

export const HEX64 = /^[0-9a-f]{64}$/;

/** A 64-hex id (SHA-256 or HMAC-SHA-256). */
export const hex64 = z.string().regex(HEX64, 'must be 64 lowercase hex characters');

/** An integer in 0 … 2^53-1. */
export const count = z.number().int().min(0);

/** A time as Date.prototype.toISOString() writes it. */
export const isoTime = z.iso.datetime({ offset: false, local: false });

/** Standard padded base64 in its canonical spelling. */
export const base64 = z.string().refine((s) => Buffer.from(s, 'base64').toString('base64') === s, 'must be canonical base64');

/** Bytes → JSON value, or FormatError(code) when the bytes are not UTF-8 JSON. */
export function parseJson(bytes: Uint8Array, code: FormatErrorCode, what: string): unknown {
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    throw new FormatError(code, `${what} is not valid UTF-8`);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new FormatError(code, `${what} is not valid JSON: ${(err as Error).message}`);
  }
}

/** Checks value against schema; throws FormatError(code) listing the first problems. */
export function validate<T>(schema: z.ZodType<T>, value: unknown, code: FormatErrorCode, what: string): T {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const problems = result.error.issues.slice(0, 3).map((i) => `${formatPath(i.path)}${i.message}`);
  const more = result.error.issues.length > 3 ? ` (and ${result.error.issues.length - 3} more)` : '';
  throw new FormatError(code, `${what} is malformed: ${problems.join('; ')}${more}`);
}

/**
 * validate with a fast path for bulk records (trees, index pages): `quick` is a hand-written check
 * that accepts only values the schema accepts; anything it does not accept goes through the schema,
 * which gives the verdict and the message. zod stays the definition; `quick` only saves its cost.
 */
export function validateQuick<T>(
  quick: (value: unknown) => boolean,
  schema: z.ZodType<T>,
  value: unknown,
  code: FormatErrorCode,
  what: string,
): T {
  return quick(value) ? (value as T) : validate(schema, value, code, what);
}

/** A JSON object (not an array, not null) whose own keys are all in `allowed` and include `required`. */
export function isPlainRecord(value: unknown, required: readonly string[], allowed: ReadonlySet<string>): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const keys = Object.keys(value);
  if (!keys.every((k) => allowed.has(k))) return false;
  return required.every((k) => Object.prototype.hasOwnProperty.call(value, k));
}

/** What `count` accepts: an integer in 0 … 2^53-1. */
export function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

export function isHex64(v: unknown): v is string {
  return typeof v === 'string' && HEX64.test(v);
}

/** parseJson then validate. */
export function decodeJson<T>(schema: z.ZodType<T>, bytes: Uint8Array, code: FormatErrorCode, what: string): T {
  return validate(schema, parseJson(bytes, code, what), code, what);
}

/** A value as compact UTF-8 JSON; key order is the object's insertion order. */
export function jsonBytes(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value), 'utf8');
}

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function formatPath(path: readonly PropertyKey[]): string {
  if (path.length === 0) return '';
  const text = path.map((p, i) => (typeof p === 'number' ? `[${p}]` : `${i === 0 ? '' : '.'}${String(p)}`)).join('');
  return `${text}: `;
}
