import type { IncomingMessage, ServerResponse } from 'node:http';
import { BrowseError } from './errors.js';
import { sendXml } from './multistatus.js';

/** What conditional requests compare: a resource's strong ETag and modification time. */
export interface Validators {
  etag: string;
  mtime: Date;
}

/** A request header as one string (the first when repeated), or undefined. */
export function headerOf(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

/**
 * RFC 9110 §13 for GET and HEAD: If-Match and If-Unmodified-Since fail with 412
 * (precondition-failed); true when If-None-Match or If-Modified-Since make the answer 304.
 */
export function isNotModified(req: IncomingMessage, r: Validators): boolean {
  const seconds = Math.floor(r.mtime.getTime() / 1000);
  const ifMatch = headerOf(req, 'if-match');
  if (ifMatch && ifMatch !== '*' && !ifMatch.split(',').some((t) => t.trim() === r.etag)) {
    throw new BrowseError('precondition-failed', 'precondition-failed: If-Match does not match the current version');
  }
  const ifUnmodified = headerOf(req, 'if-unmodified-since');
  if (ifUnmodified && seconds > Date.parse(ifUnmodified) / 1000) {
    throw new BrowseError('precondition-failed', 'precondition-failed: the file changed since If-Unmodified-Since');
  }
  const ifNone = headerOf(req, 'if-none-match');
  if (ifNone) return ifNone === '*' || ifNone.split(',').some((t) => t.trim().replace(/^W\//, '') === r.etag);
  const ifModified = headerOf(req, 'if-modified-since');
  return Boolean(ifModified) && seconds <= Date.parse(ifModified ?? '') / 1000;
}

/**
 * The one byte range [start, end] a GET asks for, or null for the whole file (no Range, a Range
 * this server does not serve, or an If-Range that no longer matches). Throws range-not-satisfiable.
 */
export function requestedRange(req: IncomingMessage, size: number, r: Validators): [number, number] | null {
  const range = headerOf(req, 'range');
  const ifRange = headerOf(req, 'if-range');
  if (!range || (ifRange && ifRange !== r.etag && ifRange !== r.mtime.toUTCString())) return null;
  const m = /^bytes=(\d*)-(\d*)$/.exec(range.trim());
  if (!m || (m[1] === '' && m[2] === '')) return null;
  let start: number;
  let end: number;
  if (m[1] === '') {
    start = Math.max(0, size - Number(m[2]));
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  }
  if (start >= size || start > end || (m[1] === '' && Number(m[2]) === 0)) {
    throw new BrowseError('range-not-satisfiable', `range-not-satisfiable: the file has ${size} bytes`, size);
  }
  return [start, end];
}

/**
 * Reads a small request body (a PROPFIND's XML) as text, refusing (413) more than maxBytes: it
 * stops at the limit instead of buffering whatever the client claims to send.
 */
export async function readSmallBody(req: IncomingMessage, maxBytes: number): Promise<string> {
  const tooLarge = () => new BrowseError('body-too-large', `body-too-large: request bodies here are limited to ${maxBytes} bytes`);
  if (Number(req.headers['content-length'] ?? 0) > maxBytes) throw tooLarge();
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes) throw tooLarge();
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Encodes segments into a URL path, each segment percent-encoded; a trailing slash for collections. */
export function hrefOf(segments: readonly string[], collection: boolean): string {
  const path = '/' + segments.map((s) => encodeURIComponent(s)).join('/');
  return collection && segments.length > 0 ? path + '/' : path;
}

/**
 * Sends an error a person can read: the status and a plain-text body starting with its stable code
 * (RFC 4918's XML for propfind-finite-depth). Anything not a BrowseError is a 500 that says little.
 */
export function sendBrowseError(res: ServerResponse, err: unknown): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const status = err instanceof BrowseError ? err.status : 500;
  if (err instanceof BrowseError && err.size !== undefined) res.setHeader('Content-Range', `bytes */${err.size}`);
  if (err instanceof BrowseError && err.code === 'propfind-finite-depth') {
    sendXml(res, status, '<?xml version="1.0" encoding="utf-8"?>\n<D:error xmlns:D="DAV:"><D:propfind-finite-depth/></D:error>\n');
    return;
  }
  const body = (err instanceof BrowseError ? err.message : 'internal-error: something went wrong reading the snapshot') + '\n';
  res.statusCode = status;
  res.setHeader('Content-Type', 'text/plain; charset=utf-8');
  res.setHeader('Content-Length', Buffer.byteLength(body));
  res.end(body);
}
