import { z } from 'zod';
import { FormatError, type FormatErrorCode } from './errors.js';
import { HEX64, parseJson } from './json.js';

/** The zod side of the records: shared schema pieces, and validation into FormatError. */

/** A 64-hex id (SHA-256 or HMAC-SHA-256). */
export const hex64 = z.string().regex(HEX64, 'must be 64 lowercase hex characters');

/** An integer in 0 … 2^53-1. */
export const count = z.number().int().min(0);

/** A time as Date.prototype.toISOString() writes it. */
export const isoTime = z.iso.datetime({ offset: false, local: false });

/** Standard padded base64 in its canonical spelling. */
export const base64 = z.string().refine((s) => Buffer.from(s, 'base64').toString('base64') === s, 'must be canonical base64');

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

/** parseJson then validate. */
export function decodeJson<T>(schema: z.ZodType<T>, bytes: Uint8Array, code: FormatErrorCode, what: string): T {
  return validate(schema, parseJson(bytes, code, what), code, what);
}

function formatPath(path: readonly PropertyKey[]): string {
  if (path.length === 0) return '';
  const text = path.map((p, i) => (typeof p === 'number' ? `[${p}]` : `${i === 0 ? '' : '.'}${String(p)}`)).join('');
  return `${text}: `;
}
