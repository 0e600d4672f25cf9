import type { Request, Response } from 'express';
import { KuraError } from '../errors.js';
import { parseXml, xmlLimits, type XmlElement } from './xml.js';

/** True when the request announces a body (a Content-Length above 0 or a chunked transfer). */
export function hasBody(req: Request): boolean {
  const length = req.headers['content-length'];
  return (length !== undefined && length !== '0') || req.headers['transfer-encoding'] !== undefined;
}

/** Sends `100 Continue` to a client that waits for it, once the request has passed its checks. */
export function acceptBody(req: Request, res: Response): void {
  if (/100-continue/i.test(req.headers.expect ?? '') && !res.headersSent) res.writeContinue();
}

/**
 * Reads a small request body as text, refusing (413) more than maxBytes: it stops reading at the
 * limit instead of buffering whatever the client claims to send.
 */
export async function readSmallBody(req: Request, res: Response, maxBytes = xmlLimits.maxBytes): Promise<string> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > maxBytes) throw new KuraError('body-too-large', `body-too-large: request bodies here are limited to ${maxBytes} bytes`);
  acceptBody(req, res);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes) throw new KuraError('body-too-large', `body-too-large: request bodies here are limited to ${maxBytes} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Reads and parses an XML body; null when the request has none (or only whitespace). */
export async function readXmlBody(req: Request, res: Response): Promise<XmlElement | null> {
  if (!hasBody(req)) return null;
  const text = await readSmallBody(req, res);
  return text.trim() === '' ? null : parseXml(text);
}
