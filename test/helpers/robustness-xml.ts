import assert from 'node:assert/strict';
import { SaxesParser } from 'saxes';

/** An element of a response body with its namespace resolved, as a client library would see it. */
export interface XmlNode {
  ns: string;
  local: string;
  text: string;
  children: XmlNode[];
}

/** Parses a response body with a namespace-aware parser (independent of the gateway's own XML code). */
export function parseTree(xml: string): XmlNode {
  const parser = new SaxesParser({ xmlns: true });
  const stack: XmlNode[] = [];
  let root: XmlNode | undefined;
  parser.on('opentag', (tag) => {
    const node: XmlNode = { ns: tag.uri, local: tag.local, text: '', children: [] };
    const parent = stack[stack.length - 1];
    if (parent) parent.children.push(node);
    else root = node;
    stack.push(node);
  });
  parser.on('closetag', () => void stack.pop());
  parser.on('text', (t) => {
    const top = stack[stack.length - 1];
    if (top) top.text += t;
  });
  parser.write(xml).close();
  assert.ok(root, 'the body has a root element');
  return root;
}

const davChildren = (node: XmlNode, local: string) => node.children.filter((c) => c.ns === 'DAV:' && c.local === local);

/** The properties a multistatus reports with status 200 for the resource whose href ends with hrefEnd. */
export function foundProps(xml: string, hrefEnd: string): XmlNode[] {
  const root = parseTree(xml);
  assert.equal(root.ns, 'DAV:');
  assert.equal(root.local, 'multistatus');
  const response = davChildren(root, 'response').find((r) => davChildren(r, 'href')[0]?.text.endsWith(hrefEnd));
  assert.ok(response, `the multistatus has a response for ${hrefEnd}`);
  return davChildren(response, 'propstat')
    .filter((ps) => / 200 /.test(davChildren(ps, 'status')[0]?.text ?? ''))
    .flatMap((ps) => davChildren(ps, 'prop').flatMap((p) => p.children));
}

/** The text of the property ns:local among props; fails when it is absent. */
export function propText(props: XmlNode[], ns: string, local: string): string {
  const prop = props.find((p) => p.ns === ns && p.local === local);
  assert.ok(prop, `property {${ns}}${local} is reported`);
  return prop.text;
}
