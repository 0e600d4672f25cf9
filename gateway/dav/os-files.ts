import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { propstat, multistatus, sendMultistatus } from '../../browse/multistatus.js';
import { KuraError } from '../errors.js';
import { replaceFile } from '../../common/replace-file.js';
import { acceptBody, readXmlBody } from './body.js';
import { DAV_NS, escapeAttr } from './xml.js';
import type { DavContext } from './context.js';

/**
 * macOS Finder writes an AppleDouble file (`._name`, the resource fork and extended attributes) beside
 * every file it copies, and `.DS_Store` into every folder it opens. Stored as files they would clutter
 * /files/ (and count against the quota); refused, Finder shows errors. So, as SabreDAV's temporary
 * file filter does, they are accepted and kept aside, in the area's meta folder under a hash of their
 * path: Finder reads back what it wrote, listings never show them, and they expire after a day.
 */
export function isOsFile(path: readonly string[]): boolean {
  const name = path[path.length - 1] ?? '';
  return path[0] === 'files' && path.length > 1 && (name === '.DS_Store' || name.startsWith('._'));
}

/** Bigger ones are accepted and dropped: such metadata is not worth a user's quota or our disk. */
const MAX_KEPT = 1 << 20;
const EXPIRE_MS = 24 * 3600_000;

/** The methods that act on an OS file; the others (LOCK, UNLOCK, OPTIONS) run as usual. */
export function osFileHandler(method: string): ((ctx: DavContext) => Promise<void>) | undefined {
  return (
    { PUT: put, GET: get, HEAD: get, DELETE: del, PROPFIND: propfind, PROPPATCH: proppatch } as Record<
      string,
      (ctx: DavContext) => Promise<void>
    >
  )[method];
}

function placeOf(ctx: DavContext): { dir: string; file: string } {
  const dir = ctx.user.osFilesDir;
  return { dir, file: join(dir, createHash('sha256').update(ctx.path.join('/')).digest('hex')) };
}

async function put(ctx: DavContext): Promise<void> {
  const { dir, file } = placeOf(ctx);
  const existed = (await stat(file).catch(() => null)) !== null;
  const body = await readKept(ctx);
  await mkdir(dir, { recursive: true });
  if (body && body.length <= MAX_KEPT) {
    await replaceFile(file, body);
  }
  if (Math.random() < 0.05) void sweep(dir);
  ctx.res.status(existed ? 204 : 201).end();
}

async function get(ctx: DavContext): Promise<void> {
  const bytes = await readFile(placeOf(ctx).file).catch(() => null);
  if (!bytes) throw new KuraError('not-found', 'no such file or folder');
  ctx.res.status(200);
  ctx.res.setHeader('Content-Type', 'application/octet-stream');
  ctx.res.setHeader('Content-Length', bytes.length);
  ctx.res.end(ctx.req.method === 'HEAD' ? undefined : bytes);
}

async function del(ctx: DavContext): Promise<void> {
  await rm(placeOf(ctx).file, { force: true });
  ctx.res.status(204).end();
}

async function propfind(ctx: DavContext): Promise<void> {
  const st = await stat(placeOf(ctx).file).catch(() => null);
  if (!st) throw new KuraError('not-found', 'no such file or folder');
  const props = [
    '<D:resourcetype/>',
    `<D:getcontentlength>${st.size}</D:getcontentlength>`,
    `<D:getlastmodified>${st.mtime.toUTCString()}</D:getlastmodified>`,
    `<D:getetag>"os-${st.mtimeMs.toString(16)}-${st.size.toString(16)}"</D:getetag>`,
  ];
  sendMultistatus(ctx.res, multistatus([propstat(hrefOf(ctx), [{ status: 200, props }])]));
}

/** The body when it is at most MAX_KEPT bytes, else null (read to the end either way). */
async function readKept(ctx: DavContext): Promise<Buffer | null> {
  acceptBody(ctx.req, ctx.res);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of ctx.req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size <= MAX_KEPT) chunks.push(chunk);
  }
  return size <= MAX_KEPT ? Buffer.concat(chunks) : null;
}

/** Finder sets properties on them too; they are accepted (200 each) and not kept. */
async function proppatch(ctx: DavContext): Promise<void> {
  const body = await readXmlBody(ctx.req, ctx.res);
  const names = (body?.children ?? [])
    .flatMap((op) => op.children)
    .flatMap((prop) => prop.children)
    .map((p) => (p.ns === DAV_NS ? `<D:${p.local}/>` : `<${p.local} xmlns="${escapeAttr(p.ns)}"/>`));
  sendMultistatus(ctx.res, multistatus([propstat(hrefOf(ctx), [{ status: 200, props: names }])]));
}

function hrefOf(ctx: DavContext): string {
  return '/' + ctx.path.map(encodeURIComponent).join('/');
}

async function sweep(dir: string): Promise<void> {
  const now = Date.now();
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    const st = await stat(join(dir, name)).catch(() => null);
    if (st && now - st.mtimeMs > EXPIRE_MS) await rm(join(dir, name), { force: true });
  }
}
