import { createHash } from 'node:crypto';
import { FormatError, type FormatErrorCode } from './errors.js';

/**
 * Shared pieces of every JSON record that need no schema library: strict UTF-8 parsing, quick checks,
 * compact bytes, SHA-256. The zod schemas are in schema.ts, so code that only writes records (the
 * agent's worker threads) does not load zod.
 */

// fatal: invalid UTF-8 would otherwise turn into U+FFFD and change names silently.
// ignoreBOM: a BOM stays in the text, where JSON.parse refuses it, as the README promises.
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

export const HEX64 = /^[0-9a-f]{64}$/;

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

/** A value as compact UTF-8 JSON; key order is the object's insertion order. */
export function jsonBytes(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value), 'utf8');
}

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}
