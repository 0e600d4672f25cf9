import type { IncomingMessage, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { contentTypeOf } from './content-type.js';
import { BrowseError, readOnly } from './errors.js';
import { headerOf, hrefOf, isNotModified, readSmallBody, requestedRange } from './http.js';
import { multistatus, propstat, sendMultistatus } from './multistatus.js';
import type { SnapshotView, ViewNode } from './view.js';
import { DAV_NS, escapeAttr, escapeText, parseXml, XmlError, xmlLimits, type XmlElement } from './xml.js';

/** The methods the view answers; every other DAV method is a write and is refused as read-only. */
export const VIEW_METHODS = 'OPTIONS, GET, HEAD, PROPFIND';
const WRITES = new Set(['PUT', 'DELETE', 'MKCOL', 'COPY', 'MOVE', 'PROPPATCH', 'LOCK', 'UNLOCK', 'POST', 'PATCH']);

/** A thumbnail maker (browse/thumbnails.ts): answers ?thumbnail=N on image files. */
export interface PreviewMaker {
  /** Sends the preview of a file, or throws BrowseError (400, 415, 422). `bytes` opens the original. */
  send(
    req: IncomingMessage,
    res: ServerResponse,
    file: { name: string; size: number; etag: string },
    size: string,
    bytes: () => Promise<Iterable<Buffer> | AsyncIterable<Buffer>>,
  ): Promise<void>;
}

export interface ViewServer {
  view: SnapshotView;
  /** The URL segments in front of the view's root, e.g. ['snapshots']. */
  base: string[];
  previews?: PreviewMaker;
}

type PropRequest = { kind: 'allprop' } | { kind: 'propname' } | { kind: 'prop'; names: { ns: string; local: string }[] };

/**
 * One request to the read-only snapshot view at segs (below server.base): PROPFIND (Depth 0 or 1),
 * GET and HEAD (one Range, conditional requests, ?thumbnail=N), OPTIONS; writes get 403
 * "snapshots are read-only". Throws BrowseError for the caller to send (sendBrowseError).
 */
export async function serveView(server: ViewServer, req: IncomingMessage, res: ServerResponse, segs: string[]): Promise<void> {
  const method = req.method ?? '';
  if (WRITES.has(method)) throw readOnly();
  if (method === 'OPTIONS') return options(res);
  if (method !== 'GET' && method !== 'HEAD' && method !== 'PROPFIND') {
    res.setHeader('Allow', VIEW_METHODS);
    throw new BrowseError('method-not-allowed', `method-not-allowed: ${method} is not supported here`);
  }
  const node = await server.view.resolve(segs);
  if (!node) throw new BrowseError('not-found', 'not-found: no such file or folder in the snapshots');
  const path = [...server.base, ...segs];
  if (method === 'PROPFIND') return propfind(server, req, res, node, path);
  return get(server, req, res, node, path);
}

function options(res: ServerResponse): void {
  res.setHeader('DAV', '1');
  res.setHeader('MS-Author-Via', 'DAV');
  res.setHeader('Allow', VIEW_METHODS);
  res.setHeader('Content-Length', '0');
  res.statusCode = 200;
  res.end();
}

async function get(server: ViewServer, req: IncomingMessage, res: ServerResponse, node: ViewNode, path: string[]): Promise<void> {
  const thumbnail = new URLSearchParams((req.url ?? '').split('?')[1] ?? '').get('thumbnail');
  if (thumbnail !== null && node.type === 'file' && server.previews) {
    return server.previews.send(req, res, node, thumbnail, () => server.view.open(node, 0, node.size - 1));
  }
  res.setHeader('ETag', node.etag);
  res.setHeader('Last-Modified', node.mtime.toUTCString());
  if (isNotModified(req, node)) {
    res.statusCode = 304;
    res.end();
    return;
  }
  if (node.type === 'collection') return sendListing(server, req, res, node, path);
  const range = requestedRange(req, node.size, node);
  const [start, end] = range ?? [0, node.size - 1];
  // Opened before the status is sent, so a missing blob is a clean 500, not a cut-off body.
  const bytes = node.size > 0 && req.method === 'GET' ? await server.view.open(node, start, end) : null;
  res.setHeader('Accept-Ranges', 'bytes');
  res.setHeader('Content-Type', contentTypeOf(node.name));
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Content-Security-Policy', "sandbox; default-src 'none'");
  res.setHeader('Cache-Control', 'private, max-age=0, must-revalidate');
  res.statusCode = range ? 206 : 200;
  if (range) res.setHeader('Content-Range', `bytes ${start}-${end}/${node.size}`);
  res.setHeader('Content-Length', String(Math.max(0, end - start + 1)));
  if (!bytes) {
    res.end();
    return;
  }
  await pipeline(Readable.from(bytes, { objectMode: false }), res);
}

async function sendListing(server: ViewServer, req: IncomingMessage, res: ServerResponse, node: ViewNode, path: string[]): Promise<void> {
  const items = await server.view.list(node);
  const rows = items
    .map((i) => {
      const href = hrefOf([...path, i.name], i.type === 'collection');
      return `<li><a href="${escapeText(href)}">${escapeText(i.name)}${i.type === 'collection' ? '/' : ''}</a></li>`;
    })
    .join('\n');
  const title = escapeText('/' + path.join('/'));
  const body = `<!doctype html><meta charset="utf-8"><title>Kura ${title}</title><h1>${title}</h1><ul>\n${rows}\n</ul>\n`;
  res.statusCode = 200;
  res.setHeader('Content-Type', 'text/html; charset=utf-8');
  res.setHeader('Content-Security-Policy', "default-src 'none'; style-src 'unsafe-inline'");
  res.setHeader('Content-Length', Buffer.byteLength(body));
  res.end(req.method === 'HEAD' ? undefined : body);
}

async function propfind(server: ViewServer, req: IncomingMessage, res: ServerResponse, node: ViewNode, path: string[]): Promise<void> {
  const depth = headerOf(req, 'depth') ?? 'infinity';
  if (depth !== '0' && depth !== '1') throw new BrowseError('propfind-finite-depth', 'propfind-finite-depth: send Depth: 0 or Depth: 1');
  const request = parsePropfind(await readXml(req));
  const members = depth === '1' && node.type === 'collection' ? await server.view.list(node) : [];
  const self = describe(node, path, request);
  if (members.length <= STREAM_ABOVE) {
    return sendMultistatus(res, multistatus([self, ...members.map((m) => describe(m, [...path, m.name], request))]));
  }
  await streamMultistatus(res, self, members, (m) => describe(m, [...path, m.name], request));
}

/** Resolves when res can take more, or is closed (a client that went away must not leave this waiting). */
function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done).off('close', done);
      resolve();
    };
    res.once('drain', done).once('close', done);
  });
}

/** Listings longer than this are sent in pieces as they are built, so memory does not grow with the folder. */
const STREAM_ABOVE = 2000;

async function streamMultistatus(
  res: ServerResponse,
  first: string,
  members: ViewNode[],
  describeOne: (m: ViewNode) => string,
): Promise<void> {
  const [head, tail] = multistatus(['\u0000']).split('\u0000') as [string, string];
  res.statusCode = 207;
  res.setHeader('Content-Type', 'application/xml; charset=utf-8');
  res.write(head + first);
  for (let i = 0; i < members.length && !res.destroyed; i += 500) {
    const piece = members
      .slice(i, i + 500)
      .map(describeOne)
      .join('');
    if (!res.write(piece)) await drained(res);
  }
  res.end(tail);
}

async function readXml(req: IncomingMessage): Promise<XmlElement | null> {
  const text = await readSmallBody(req, xmlLimits.maxBytes);
  if (text.trim() === '') return null;
  try {
    return parseXml(text);
  } catch (err) {
    throw err instanceof XmlError ? new BrowseError('bad-xml', err.message) : err;
  }
}

function parsePropfind(body: XmlElement | null): PropRequest {
  if (!body) return { kind: 'allprop' };
  const bad = () => new BrowseError('bad-xml', 'bad-xml: propfind needs prop, allprop or propname');
  if (body.ns !== DAV_NS || body.local !== 'propfind') throw new BrowseError('bad-xml', 'bad-xml: the body must be a DAV:propfind');
  const first = body.children.find((c) => c.ns === DAV_NS);
  if (!first) throw bad();
  if (first.local === 'allprop') return { kind: 'allprop' };
  if (first.local === 'propname') return { kind: 'propname' };
  if (first.local === 'prop') return { kind: 'prop', names: first.children.map((c) => ({ ns: c.ns, local: c.local })) };
  throw bad();
}

/** The DAV: properties a view node has, in the order allprop lists them. */
const LIVE = [
  'resourcetype',
  'displayname',
  'getcontentlength',
  'getlastmodified',
  'creationdate',
  'getetag',
  'getcontenttype',
  'supportedlock',
  'lockdiscovery',
];

function liveValue(node: ViewNode, local: string): string | null {
  const file = node.type === 'file';
  switch (local) {
    case 'resourcetype':
      return file ? '' : '<D:collection/>';
    case 'displayname':
      return escapeText(node.name);
    case 'getcontentlength':
      return file ? String(node.size) : null;
    case 'getlastmodified':
      return node.mtime.toUTCString();
    case 'creationdate':
      return node.mtime.toISOString();
    case 'getetag':
      return escapeText(node.etag);
    case 'getcontenttype':
      return file ? contentTypeOf(node.name) : null;
    case 'supportedlock':
    case 'lockdiscovery':
      return '';
    default:
      return null;
  }
}

const el = (local: string, inner: string) => (inner === '' ? `<D:${local}/>` : `<D:${local}>${inner}</D:${local}>`);

/** Each node's live properties as XML, built once: nodes of a cached tree are listed again and again. */
const propsOf = new WeakMap<ViewNode, Map<string, string>>();

function liveProps(node: ViewNode): Map<string, string> {
  let props = propsOf.get(node);
  if (!props) {
    props = new Map();
    for (const local of LIVE) {
      const value = liveValue(node, local);
      if (value !== null) props.set(local, el(local, value));
    }
    propsOf.set(node, props);
  }
  return props;
}

function describe(node: ViewNode, path: string[], request: PropRequest): string {
  const href = hrefOf(path, node.type === 'collection');
  const props = liveProps(node);
  if (request.kind === 'propname') return propstat(href, [{ status: 200, props: [...props.keys()].map((l) => `<D:${l}/>`) }]);
  if (request.kind === 'allprop') return propstat(href, [{ status: 200, props: [...props.values()] }]);
  const found: string[] = [];
  const missing: string[] = [];
  for (const name of request.names) {
    const xml = name.ns === DAV_NS ? props.get(name.local) : undefined;
    if (xml !== undefined) found.push(xml);
    else missing.push(name.ns === DAV_NS ? `<D:${name.local}/>` : `<${name.local} xmlns="${escapeAttr(name.ns)}"/>`);
  }
  return propstat(href, [
    { status: 200, props: found },
    { status: 404, props: missing },
  ]);
}
