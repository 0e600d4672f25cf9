import { KuraError } from '../errors.js';

/**
 * Turns a URL path (still percent-encoded, as it came off the wire) into validated segments.
 * Refuses anything that could name a place outside the caller's area: `.` and `..` segments (also
 * when encoded as %2e), encoded separators (%2f, %5c), backslashes, NUL and other control characters,
 * and byte sequences that are not valid UTF-8 (overlong encodings included, which the decoder rejects).
 * Names are normalised to NFC so that NFC and NFD spellings reach the same file.
 */
export function parseUrlPath(rawPath: string): string[] {
  const withoutQuery = rawPath.split('?')[0] ?? '';
  const rawSegments = withoutQuery.split('/').filter((s) => s !== '');
  return rawSegments.map(decodeSegment);
}

const CONTROL_CHARS = /[\u0000-\u001f\u007f]/;

function decodeSegment(raw: string): string {
  if (/%(2f|5c|00)/i.test(raw)) {
    throw new KuraError('bad-path', 'encoded separators are not allowed in a path');
  }
  let decoded: string;
  try {
    decoded = decodeStrictUtf8(raw);
  } catch {
    throw new KuraError('bad-path', 'the path is not valid percent-encoded UTF-8');
  }
  return checkName(decoded.normalize('NFC'));
}

/** Validates one decoded name; returns it unchanged when it is safe to use as a file name. */
export function checkName(name: string): string {
  if (name === '' || name === '.' || name === '..') {
    throw new KuraError('bad-path', 'the path contains a "." or ".." segment');
  }
  if (name.includes('/') || name.includes('\\') || CONTROL_CHARS.test(name)) {
    throw new KuraError('bad-path', 'the path contains a forbidden character');
  }
  if (Buffer.byteLength(name) > 250) {
    throw new KuraError('bad-path', 'a name in the path is longer than 250 bytes');
  }
  return name;
}

const strictDecoder = new TextDecoder('utf-8', { fatal: true });

function decodeStrictUtf8(raw: string): string {
  if (!raw.includes('%')) return raw;
  const bytes: number[] = [];
  for (let i = 0; i < raw.length; i++) {
    const ch = raw[i] as string;
    if (ch === '%') {
      const hex = raw.slice(i + 1, i + 3);
      if (!/^[0-9a-fA-F]{2}$/.test(hex)) throw new Error('bad escape');
      bytes.push(parseInt(hex, 16));
      i += 2;
    } else {
      bytes.push(...Buffer.from(ch, 'utf8'));
    }
  }
  return strictDecoder.decode(Uint8Array.from(bytes));
}

/** Encodes segments back into a URL path (each segment percent-encoded). */
export function encodePath(segments: readonly string[], trailingSlash: boolean): string {
  const body = segments.map((s) => encodeURIComponent(s)).join('/');
  const path = '/' + body;
  return trailingSlash && segments.length > 0 ? path + '/' : path;
}
