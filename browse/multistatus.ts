import { STATUS_CODES } from 'node:http';
import type { ServerResponse } from 'node:http';
import { escapeText } from './xml.js';

const statusLine = (status: number) => `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}`;

/** A DAV:response with one propstat per non-empty group. */
export function propstat(href: string, groups: { status: number; props: string[] }[]): string {
  const stats = groups
    .filter((g) => g.props.length > 0)
    .map((g) => `<D:propstat><D:prop>${g.props.join('')}</D:prop><D:status>${statusLine(g.status)}</D:status></D:propstat>`)
    .join('');
  return `<D:response><D:href>${escapeText(href)}</D:href>${stats}</D:response>`;
}

/** A DAV:response carrying only a status (for errors on members of a collection). */
export function statusResponse(href: string, status: number, description?: string): string {
  const why = description ? `<D:responsedescription>${escapeText(description)}</D:responsedescription>` : '';
  return `<D:response><D:href>${escapeText(href)}</D:href><D:status>${statusLine(status)}</D:status>${why}</D:response>`;
}

export function multistatus(responses: string[]): string {
  return `<?xml version="1.0" encoding="utf-8"?>\n<D:multistatus xmlns:D="DAV:">${responses.join('')}</D:multistatus>\n`;
}

export function sendMultistatus(res: ServerResponse, body: string): void {
  sendXml(res, 207, body);
}

export function sendXml(res: ServerResponse, status: number, body: string): void {
  res.statusCode = status;
  res.setHeader('Content-Type', 'application/xml; charset=utf-8');
  res.setHeader('Content-Length', Buffer.byteLength(body));
  res.end(body);
}
