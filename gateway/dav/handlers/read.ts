import { pipeline } from 'node:stream/promises';
import { KuraError } from '../../errors.js';
import { header, hrefOf, listResources, statResource, type DavContext, type Resource } from '../context.js';
import { contentTypeOf } from '../live-props.js';
import { getIndex } from './kura.js';
import { escapeText } from '../xml.js';

export const ALLOWED_METHODS = 'OPTIONS, GET, HEAD, PUT, DELETE, MKCOL, COPY, MOVE, PROPFIND, PROPPATCH, LOCK, UNLOCK';

/** OPTIONS: DAV classes 1 and 2, and the Microsoft header that makes Office and Explorer use DAV. */
export async function options(ctx: DavContext): Promise<void> {
  ctx.res.setHeader('DAV', '1, 2');
  ctx.res.setHeader('MS-Author-Via', 'DAV');
  ctx.res.setHeader('Allow', ALLOWED_METHODS);
  ctx.res.setHeader('Content-Length', '0');
  ctx.res.status(200).end();
}

/**
 * GET and HEAD: files stream from disk with ETag, Last-Modified, one byte range (206, or 416 with
 * the total size) and conditional requests; a collection answers a small HTML listing.
 */
export async function get(ctx: DavContext): Promise<void> {
  if (ctx.path.length === 2 && ctx.path[0] === '.kura' && ctx.path[1] === 'index') return getIndex(ctx);
  const r = await statResource(ctx, ctx.path);
  if (!r) throw new KuraError('not-found', 'no such file or folder');
  const res = ctx.res;
  res.setHeader('ETag', r.etag);
  res.setHeader('Last-Modified', r.mtime.toUTCString());
  if (notModified(ctx, r)) {
    res.status(304).end();
    return;
  }
  if (r.type === 'collection') return sendListing(ctx, r);
  const range = parseRange(ctx.req.headers.range, r.size, header(ctx.req, 'if-range'), r);
  res.setHeader('Accept-Ranges', 'bytes');
  res.setHeader('Content-Type', contentTypeOf(r.name));
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Content-Security-Policy', "sandbox; default-src 'none'");
  const [start, end] = range ?? [0, r.size - 1];
  if (range) {
    res.status(206);
    res.setHeader('Content-Range', `bytes ${start}-${end}/${r.size}`);
  } else res.status(200);
  res.setHeader('Content-Length', String(Math.max(0, end - start + 1)));
  if (ctx.req.method === 'HEAD' || r.size === 0) {
    res.end();
    return;
  }
  const area = r.path[0] === '.kura' ? ctx.user.kura : ctx.user.files;
  await pipeline(area.openRead(r.path.slice(1), start, end), res);
}

function notModified(ctx: DavContext, r: Resource): boolean {
  const h = ctx.req.headers;
  const ifMatch = h['if-match'];
  if (ifMatch && ifMatch !== '*' && !ifMatch.split(',').some((t) => t.trim() === r.etag)) {
    throw new KuraError('precondition-failed', 'precondition-failed: If-Match does not match the current version');
  }
  const ifUnmodified = h['if-unmodified-since'];
  if (ifUnmodified && Math.floor(r.mtime.getTime() / 1000) > Date.parse(ifUnmodified) / 1000) {
    throw new KuraError('precondition-failed', 'precondition-failed: the file changed since If-Unmodified-Since');
  }
  const ifNone = h['if-none-match'];
  if (ifNone) return ifNone === '*' || ifNone.split(',').some((t) => t.trim().replace(/^W\//, '') === r.etag);
  const ifModified = h['if-modified-since'];
  return Boolean(ifModified) && Math.floor(r.mtime.getTime() / 1000) <= Date.parse(ifModified ?? '') / 1000;
}

/** One satisfiable range [start, end], null for the whole file; throws range-not-satisfiable. */
function parseRange(header: string | undefined, size: number, ifRange: string | undefined, r: Resource): [number, number] | null {
  if (!header || (ifRange && ifRange !== r.etag && ifRange !== r.mtime.toUTCString())) return null;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
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
    ctx416(size);
  }
  return [start, end];
}

function ctx416(size: number): never {
  const err = new KuraError('range-not-satisfiable', `range-not-satisfiable: the file has ${size} bytes`);
  (err as KuraError & { size?: number }).size = size;
  throw err;
}

async function sendListing(ctx: DavContext, r: Resource): Promise<void> {
  const items = await listResources(ctx, ctx.path);
  const rows = items
    .sort((a, b) => a.name.localeCompare(b.name))
    .map((i) => `<li><a href="${escapeText(hrefOf(i))}">${escapeText(i.name)}${i.type === 'collection' ? '/' : ''}</a></li>`)
    .join('\n');
  const title = escapeText('/' + r.path.join('/'));
  const body = `<!doctype html><meta charset="utf-8"><title>Kura ${title}</title><h1>${title}</h1><ul>\n${rows}\n</ul>\n`;
  ctx.res.status(200);
  ctx.res.setHeader('Content-Type', 'text/html; charset=utf-8');
  ctx.res.setHeader('Content-Security-Policy', "default-src 'none'; style-src 'unsafe-inline'");
  ctx.res.setHeader('Content-Length', Buffer.byteLength(body));
  ctx.res.end(ctx.req.method === 'HEAD' ? undefined : body);
}
