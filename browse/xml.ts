import { SaxesParser } from 'saxes';

export const DAV_NS = 'DAV:';

/** A namespace-resolved XML element, as much of the request body as the DAV methods need. */
export interface XmlElement {
  ns: string;
  local: string;
  attrs: { ns: string; local: string; value: string }[];
  children: XmlElement[];
  text: string;
  /** Text and child elements in document order, to serialise dead property values faithfully. */
  content: (string | XmlElement)[];
}

/** A malformed or hostile XML body; its message starts with `bad-xml:`. */
export class XmlError extends Error {
  readonly code = 'bad-xml';
}

/** Bounds on request bodies: anything larger or deeper is refused with 400 before it costs much. */
export const xmlLimits = { maxBytes: 1 << 20, maxDepth: 64, maxElements: 20_000 };

/**
 * Parses a DAV request body strictly: well-formed, namespace-valid XML 1.0, no DOCTYPE (so no entity
 * expansion, no external entities), at most xmlLimits deep and large. Throws XmlError.
 */
export function parseXml(text: string): XmlElement {
  if (Buffer.byteLength(text) > xmlLimits.maxBytes) throw badXml('the XML body is too large');
  const parser = new SaxesParser({ xmlns: true, position: false });
  const stack: XmlElement[] = [];
  let root: XmlElement | null = null;
  let count = 0;
  let failure: string | null = null;
  parser.on('error', (e) => {
    failure ??= e.message;
  });
  parser.on('doctype', () => {
    throw new Error('DOCTYPE declarations are not accepted');
  });
  parser.on('opentag', (tag) => {
    // Throwing stops saxes at once: its namespace lookup walks the open-tag stack, so carrying on
    // through a hostile nesting would cost time quadratic in the depth.
    if (stack.length >= xmlLimits.maxDepth) throw new Error(`elements nested deeper than ${xmlLimits.maxDepth}`);
    if (++count > xmlLimits.maxElements) throw new Error(`more than ${xmlLimits.maxElements} elements`);
    const el: XmlElement = { ns: tag.uri, local: tag.local, attrs: [], children: [], text: '', content: [] };
    for (const a of Object.values(tag.attributes)) {
      if (a.prefix !== 'xmlns' && a.name !== 'xmlns') el.attrs.push({ ns: a.uri, local: a.local, value: a.value });
    }
    const parent = stack[stack.length - 1];
    if (parent) {
      parent.children.push(el);
      parent.content.push(el);
    } else root = el;
    stack.push(el);
  });
  parser.on('closetag', () => void stack.pop());
  const onText = (t: string) => {
    const top = stack[stack.length - 1];
    if (top) {
      top.text += t;
      top.content.push(t);
    }
  };
  parser.on('text', onText);
  parser.on('cdata', onText);
  try {
    parser.write(text).close();
  } catch (e) {
    failure ??= (e as Error).message;
  }
  if (failure) throw badXml(failure);
  if (!root) throw badXml('the body has no root element');
  return root;
}

function badXml(why: string): XmlError {
  return new XmlError(`bad-xml: ${why.split('\n')[0] ?? why}`);
}

/** The first child with the given namespace and local name. */
export function child(el: XmlElement, ns: string, local: string): XmlElement | undefined {
  return el.children.find((c) => c.ns === ns && c.local === local);
}

export function escapeText(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

export function escapeAttr(s: string): string {
  return escapeText(s).replace(/"/g, '&quot;');
}

/**
 * Serialises an element so it stands on its own: each element declares its default namespace
 * (xmlns="" for none) where it differs from its parent's, attributes in a namespace get a prefix.
 */
export function serialize(el: XmlElement, parentNs: string | null = null): string {
  let out = `<${el.local}`;
  if (el.ns !== parentNs) out += ` xmlns="${escapeAttr(el.ns)}"`;
  el.attrs.forEach((a, i) => {
    out += a.ns ? ` xmlns:a${i}="${escapeAttr(a.ns)}" a${i}:${a.local}="${escapeAttr(a.value)}"` : ` ${a.local}="${escapeAttr(a.value)}"`;
  });
  if (el.content.length === 0) return out + '/>';
  out += '>';
  for (const part of el.content) out += typeof part === 'string' ? escapeText(part) : serialize(part, el.ns);
  return out + `</${el.local}>`;
}
