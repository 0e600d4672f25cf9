import { KuraError } from '../../errors.js';
import type { DeadProp } from '../../storage/dead-props.js';
import { readXmlBody } from '../body.js';
import { checkWrite, hrefOf, statResource, writablePath, type DavContext } from '../context.js';
import { isLive } from '../live-props.js';
import { multistatus, propstat, sendMultistatus } from '../../../browse/multistatus.js';
import { DAV_NS, escapeText, serialize, type XmlElement } from '../xml.js';

interface Instruction {
  op: 'set' | 'remove';
  prop: XmlElement;
}

/**
 * PROPPATCH (RFC 4918 §9.2): every instruction applies in document order, all or nothing. Live
 * properties are protected (403), and then every other instruction fails with 424.
 */
export async function proppatch(ctx: DavContext): Promise<void> {
  const segs = writablePath(ctx.path, true);
  const body = await readXmlBody(ctx.req, ctx.res);
  const instructions = parseUpdate(body);
  const resource = await statResource(ctx, ctx.path);
  if (!resource) throw new KuraError('not-found', 'no such file or folder');
  await checkWrite(ctx, [ctx.path]);
  const protectedOnes = instructions.filter((i) => isLive({ ns: i.prop.ns, local: i.prop.local }));
  const names = (list: Instruction[]) => list.map((i) => emptyElement(i.prop));
  if (protectedOnes.length > 0) {
    const others = instructions.filter((i) => !protectedOnes.includes(i));
    sendMultistatus(
      ctx.res,
      multistatus([
        propstat(hrefOf(resource), [
          { status: 403, props: names(protectedOnes) },
          { status: 424, props: names(others) },
        ]),
      ]),
    );
    return;
  }
  const props = applyInstructions(await ctx.user.props.get(segs), instructions);
  await ctx.user.props.put(segs, props);
  await applyWin32Modified(ctx, segs, instructions);
  sendMultistatus(ctx.res, multistatus([propstat(hrefOf(resource), [{ status: 200, props: names(instructions) }])]));
}

const MS_NS = 'urn:schemas-microsoft-com:';

/**
 * Explorer copies a file with PUT, then sends the original's times as Win32 properties: the
 * modification time is applied to the file too, so it keeps its date (as with any other copy).
 */
async function applyWin32Modified(ctx: DavContext, segs: string[], instructions: Instruction[]): Promise<void> {
  const set = instructions.find((i) => i.op === 'set' && i.prop.ns === MS_NS && i.prop.local === 'Win32LastModifiedTime');
  const time = set ? Date.parse(set.prop.text.trim()) : NaN;
  if (segs.length > 0 && Number.isFinite(time)) await ctx.user.files.setModified(segs, new Date(time));
}

function parseUpdate(body: XmlElement | null): Instruction[] {
  if (!body || body.ns !== DAV_NS || body.local !== 'propertyupdate') {
    throw new KuraError('bad-xml', 'bad-xml: PROPPATCH needs a DAV:propertyupdate body');
  }
  const out: Instruction[] = [];
  for (const op of body.children) {
    if (op.ns !== DAV_NS || (op.local !== 'set' && op.local !== 'remove')) continue;
    for (const prop of op.children) {
      if (prop.ns !== DAV_NS || prop.local !== 'prop') continue;
      for (const p of prop.children) out.push({ op: op.local, prop: p });
    }
  }
  if (out.length === 0) throw new KuraError('bad-xml', 'bad-xml: the propertyupdate changes no property');
  return out;
}

function applyInstructions(current: DeadProp[], instructions: Instruction[]): DeadProp[] {
  const props = new Map(current.map((p) => [`${p.ns}\u0000${p.name}`, p]));
  for (const { op, prop } of instructions) {
    const key = `${prop.ns}\u0000${prop.local}`;
    if (op === 'remove') props.delete(key);
    else props.set(key, { ns: prop.ns, name: prop.local, xml: serialize(prop) });
  }
  return [...props.values()];
}

function emptyElement(p: XmlElement): string {
  return p.ns === DAV_NS ? `<D:${p.local}/>` : `<${p.local} xmlns="${escapeText(p.ns)}"/>`;
}
