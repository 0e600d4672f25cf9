import { isNotModified, requestedRange } from '../../../browse/http.js';
import { KuraError } from '../../errors.js';
import { hrefOf, listResources, statResource, type DavContext, type Resource } from '../context.js';
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
  const thumbnail = new URLSearchParams(ctx.req.url.split('?')[1] ?? '').get('thumbnail');
  if (thumbnail !== null && r.type === 'file' && r.path[0] === 'files') {
    return ctx.user.previews.send(ctx.req, ctx.res, r, thumbnail, async () => ctx.user.files.openRead(r.path.slice(1)));
  }
  const res = ctx.res;
  res.setHeader('ETag', r.etag);
  res.setHeader('Last-Modified', r.mtime.toUTCString());
  if (isNotModified(ctx.req, r)) {
    res.status(304).end();
    return;
  }
  if (r.type === 'collection') return sendListing(ctx, r);
  const area = r.path[0] === '.kura' ? ctx.user.kura : ctx.user.files;
  const range = requestedRange(ctx.req, r.size, r);
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
  try {
    await area.sendRange(r.path.slice(1), start, end, res);
  } catch (err) {
    // Before the first byte the error still gets its status; after it, the status line and length are
    // gone, and a file that cannot be read to the end cuts the response.
    if (!res.headersSent) throw err;
    res.destroy(err as Error);
    return;
  }
  res.end();
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
