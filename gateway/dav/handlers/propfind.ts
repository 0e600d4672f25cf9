import { KuraError } from '../../errors.js';
import { readXmlBody } from '../body.js';
import { header, hrefOf, listResources, statResource, type DavContext, type Resource } from '../context.js';
import { isLive, LIVE_NAMES, liveProp, propKey, type PropName } from '../live-props.js';
import { DAV_NS, escapeText, type XmlElement } from '../xml.js';
import { multistatus, propstat, sendMultistatus } from '../../../browse/multistatus.js';

type Request = { kind: 'allprop'; include: PropName[] } | { kind: 'propname' } | { kind: 'prop'; names: PropName[] };

/** PROPFIND (RFC 4918 §9.1): Depth 0 or 1 only; infinity (or no Depth header) is refused with 403. */
export async function propfind(ctx: DavContext): Promise<void> {
  const depth = header(ctx.req, 'depth') ?? 'infinity';
  if (depth !== '0' && depth !== '1') {
    throw new KuraError('propfind-finite-depth', 'propfind-finite-depth: send Depth: 0 or Depth: 1');
  }
  const request = parsePropfind(await readXmlBody(ctx.req, ctx.res));
  const resource = await statResource(ctx, ctx.path);
  if (!resource) throw new KuraError('not-found', 'no such file or folder');
  const targets = [resource];
  if (depth === '1' && resource.type === 'collection') targets.push(...(await listResources(ctx, ctx.path)));
  const responses: string[] = [];
  for (const r of targets) responses.push(await describe(ctx, r, request));
  sendMultistatus(ctx.res, multistatus(responses));
}

function parsePropfind(body: XmlElement | null): Request {
  if (!body) return { kind: 'allprop', include: [] };
  if (body.ns !== DAV_NS || body.local !== 'propfind') throw new KuraError('bad-xml', 'bad-xml: the body must be a DAV:propfind');
  const first = body.children.find((c) => c.ns === DAV_NS);
  if (!first) throw new KuraError('bad-xml', 'bad-xml: propfind needs prop, allprop or propname');
  const namesOf = (el: XmlElement | undefined) => (el?.children ?? []).map((c) => ({ ns: c.ns, local: c.local }));
  if (first.local === 'allprop') {
    return { kind: 'allprop', include: namesOf(body.children.find((c) => c.ns === DAV_NS && c.local === 'include')) };
  }
  if (first.local === 'propname') return { kind: 'propname' };
  if (first.local === 'prop') return { kind: 'prop', names: namesOf(first) };
  throw new KuraError('bad-xml', 'bad-xml: propfind needs prop, allprop or propname');
}

async function describe(ctx: DavContext, r: Resource, request: Request): Promise<string> {
  const dead = r.writable ? await ctx.user.props.get(r.path.slice(1)) : [];
  const href = hrefOf(r);
  if (request.kind === 'propname') {
    const names: string[] = [];
    for (const local of LIVE_NAMES) if ((await liveProp(ctx, r, local)) !== null) names.push(`<D:${local}/>`);
    for (const d of dead) names.push(`<${d.name} xmlns="${escapeText(d.ns)}"/>`);
    return propstat(href, [{ status: 200, props: names }]);
  }
  const found: string[] = [];
  const missing: string[] = [];
  const wanted: PropName[] =
    request.kind === 'prop'
      ? request.names
      : [...LIVE_NAMES.map((local) => ({ ns: DAV_NS, local })), ...dead.map((d) => ({ ns: d.ns, local: d.name })), ...request.include];
  const seen = new Set<string>();
  for (const name of wanted) {
    if (seen.has(propKey(name))) continue;
    seen.add(propKey(name));
    const value = isLive(name)
      ? await liveProp(ctx, r, name.local)
      : (dead.find((d) => d.ns === name.ns && d.name === name.local)?.xml ?? null);
    if (value !== null) found.push(value);
    else if (request.kind === 'prop') missing.push(emptyProp(name));
  }
  return propstat(href, [
    { status: 200, props: found },
    { status: 404, props: missing },
  ]);
}

function emptyProp(name: PropName): string {
  return name.ns === DAV_NS ? `<D:${name.local}/>` : `<${name.local} xmlns="${escapeText(name.ns)}"/>`;
}
