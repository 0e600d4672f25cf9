import { Readable } from 'node:stream';
import { KuraError } from '../../errors.js';
import { readXmlBody } from '../body.js';
import { checkCaseCollision, checkIfHeader, header, checkWrite, pathKey, statResource, writablePath, type DavContext } from '../context.js';
import { submittedTokens } from '../if-header.js';
import { activeLockXml } from '../live-props.js';
import { parseTimeout, type Lock, type LockScope } from '../locks.js';
import { isOsFile } from '../os-files.js';
import { sendXml } from '../../../browse/multistatus.js';
import { child, DAV_NS, serialize, type XmlElement } from '../xml.js';

/**
 * LOCK (RFC 4918 §9.10): a lockinfo body creates a write lock (on an unmapped URL it creates an empty
 * file, 201); no body refreshes the lock named in the If header.
 */
export async function lock(ctx: DavContext): Promise<void> {
  const segs = writablePath(ctx.path, true);
  const body = await readXmlBody(ctx.req, ctx.res);
  const timeout = parseTimeout(header(ctx.req, 'timeout'));
  if (!body) return refresh(ctx, timeout);
  const info = parseLockInfo(body);
  const depth = header(ctx.req, 'depth') ?? 'infinity';
  if (depth !== '0' && depth !== 'infinity') throw new KuraError('bad-request', 'bad-request: LOCK takes Depth 0 or infinity');
  await checkIfHeader(ctx);
  let created = false;
  // Finder's AppleDouble and .DS_Store files are kept aside (os-files.ts): locking one creates nothing.
  if (!(await statResource(ctx, ctx.path)) && !isOsFile(ctx.path)) {
    await checkWrite(ctx, [ctx.path.slice(0, -1)]);
    await checkCaseCollision(ctx, ctx.path);
    await ctx.user.files.writeFile(segs, emptyBody(), ctx.user.space);
    created = true;
  }
  const lock = ctx.locks.create({
    area: ctx.user.id,
    root: pathKey(ctx.path),
    depth,
    scope: info.scope,
    ownerXml: info.ownerXml,
    timeoutSeconds: timeout,
  });
  ctx.res.setHeader('Lock-Token', `<${lock.token}>`);
  sendLockDiscovery(ctx, created ? 201 : 200, lock);
}

async function refresh(ctx: DavContext, timeout: number): Promise<void> {
  const tokens = ctx.ifLists ? [...submittedTokens(ctx.ifLists)] : [];
  if (tokens.length === 0) throw new KuraError('bad-request', 'bad-request: a LOCK refresh needs the lock token in an If header');
  await checkIfHeader(ctx);
  const covering = ctx.locks.covering(ctx.user.id, pathKey(ctx.path));
  const found = covering.find((l) => tokens.includes(l.token));
  if (!found) throw new KuraError('precondition-failed', 'precondition-failed: no lock with that token covers this resource');
  sendLockDiscovery(ctx, 200, ctx.locks.refresh(found, timeout));
}

/** UNLOCK: removes the lock named by Lock-Token when it covers this resource; 409 otherwise. */
export async function unlock(ctx: DavContext): Promise<void> {
  const token = /^\s*<([^>]+)>\s*$/.exec(header(ctx.req, 'lock-token') ?? '')?.[1];
  if (!token) throw new KuraError('bad-request', 'bad-request: UNLOCK needs a Lock-Token header');
  const covering = ctx.locks.covering(ctx.user.id, pathKey(ctx.path));
  if (!covering.some((l) => l.token === token)) {
    throw new KuraError('conflict', 'conflict: no lock with that token covers this resource');
  }
  ctx.locks.remove(token);
  ctx.res.status(204).end();
}

function parseLockInfo(body: XmlElement): { scope: LockScope; ownerXml: string } {
  if (body.ns !== DAV_NS || body.local !== 'lockinfo') throw new KuraError('bad-xml', 'bad-xml: LOCK needs a DAV:lockinfo body');
  const scopeEl = child(body, DAV_NS, 'lockscope')?.children[0];
  const typeEl = child(body, DAV_NS, 'locktype')?.children[0];
  if (!scopeEl || scopeEl.ns !== DAV_NS || (scopeEl.local !== 'exclusive' && scopeEl.local !== 'shared')) {
    throw new KuraError('bad-xml', 'bad-xml: lockscope must be exclusive or shared');
  }
  if (!typeEl || typeEl.ns !== DAV_NS || typeEl.local !== 'write') throw new KuraError('bad-xml', 'bad-xml: only write locks exist');
  const owner = child(body, DAV_NS, 'owner');
  return { scope: scopeEl.local, ownerXml: owner ? serialize(owner) : '' };
}

function sendLockDiscovery(ctx: DavContext, status: number, lock: Lock): void {
  const body = `<?xml version="1.0" encoding="utf-8"?>\n<D:prop xmlns:D="DAV:"><D:lockdiscovery>${activeLockXml(lock)}</D:lockdiscovery></D:prop>\n`;
  sendXml(ctx.res, status, body);
}

function emptyBody(): Readable {
  return Readable.from([]);
}
