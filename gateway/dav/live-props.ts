import { contentTypeOf } from '../../browse/content-type.js';
import type { DavContext, Resource } from './context.js';
import { pathKey } from './context.js';
import type { Lock } from './locks.js';
import { DAV_NS, escapeText } from './xml.js';

export { contentTypeOf };

/** A property's qualified name. */
export interface PropName {
  ns: string;
  local: string;
}

export const propKey = (p: PropName) => `${p.ns}\u0000${p.local}`;

/** The live properties of the DAV namespace this server computes; clients cannot set them. */
export const LIVE_NAMES = [
  'resourcetype',
  'getcontentlength',
  'getlastmodified',
  'creationdate',
  'getetag',
  'getcontenttype',
  'supportedlock',
  'lockdiscovery',
  'quota-used-bytes',
  'quota-available-bytes',
] as const;

export function isLive(p: PropName): boolean {
  return p.ns === DAV_NS && (LIVE_NAMES as readonly string[]).includes(p.local);
}

const el = (local: string, inner: string) => (inner === '' ? `<D:${local}/>` : `<D:${local}>${inner}</D:${local}>`);

/** The live property's XML for this resource, or null when the resource does not have it. */
export async function liveProp(ctx: DavContext, r: Resource, local: string): Promise<string | null> {
  const file = r.type === 'file';
  switch (local) {
    case 'resourcetype':
      return el(local, file ? '' : '<D:collection/>');
    case 'getcontentlength':
      return file ? el(local, String(r.size)) : null;
    case 'getlastmodified':
      return el(local, r.mtime.toUTCString());
    case 'creationdate':
      return el(local, r.birthtime.toISOString());
    case 'getetag':
      return file ? el(local, escapeText(r.etag)) : null;
    case 'getcontenttype':
      return file ? el(local, contentTypeOf(r.name)) : null;
    case 'supportedlock':
      return el(
        local,
        ['exclusive', 'shared']
          .map((s) => `<D:lockentry><D:lockscope><D:${s}/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockentry>`)
          .join(''),
      );
    case 'lockdiscovery':
      return el(local, ctx.locks.covering(ctx.user.id, pathKey(r.path)).map(activeLockXml).join(''));
    case 'quota-used-bytes':
    case 'quota-available-bytes':
      return file ? null : el(local, String(await quotaFigure(ctx, local)));
    default:
      return null;
  }
}

async function quotaFigure(ctx: DavContext, local: string): Promise<number> {
  const used = await ctx.user.usedBytes();
  return local === 'quota-used-bytes' ? used : Math.max(0, ctx.user.quotaBytes - used);
}

/** The DAV:activelock element describing one lock (RFC 4918 §14.1). */
export function activeLockXml(lock: Lock): string {
  const remaining = Math.max(0, Math.round((lock.expiresAt - Date.now()) / 1000));
  return (
    `<D:activelock><D:locktype><D:write/></D:locktype><D:lockscope><D:${lock.scope}/></D:lockscope>` +
    `<D:depth>${lock.depth === '0' ? '0' : 'infinity'}</D:depth>${lock.ownerXml}` +
    `<D:timeout>Second-${remaining}</D:timeout>` +
    `<D:locktoken><D:href>${escapeText(lock.token)}</D:href></D:locktoken>` +
    `<D:lockroot><D:href>${escapeText(encodeURI(lock.root))}</D:href></D:lockroot></D:activelock>`
  );
}
