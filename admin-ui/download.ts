import type { Response } from 'express';

/**
 * Content-Disposition: attachment with an ASCII fallback and the UTF-8 name (RFC 6266 / 5987), so
 * a file is always saved, never shown in the console's origin.
 */
export function attachmentHeader(name: string): string {
  const ascii = name.replace(/[^\x20-\x7e]|["\\]/g, '_');
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(name)}`;
}

/** Headers every download carries: attachment, no sniffing, and a sandbox should it be opened anyway. */
export function setDownloadHeaders(res: Response, name: string, type: string): void {
  res.setHeader('Content-Disposition', attachmentHeader(name));
  res.setHeader('Content-Type', type);
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Content-Security-Policy', "sandbox; default-src 'none'");
}

export function sendAttachment(res: Response, name: string, type: string, body: Buffer): void {
  setDownloadHeaders(res, name, type);
  res.setHeader('Content-Length', String(body.length));
  res.status(200).end(body);
}
