import { KuraError } from '../errors.js';

export interface Condition {
  not: boolean;
  token?: string;
  etag?: string;
}

export interface IfList {
  /** The tagged resource (as written, a URL or path), or null for the request URI. */
  resource: string | null;
  conditions: Condition[];
}

/**
 * Parses an If header (RFC 4918 §10.4). Anything that does not follow the grammar throws
 * KuraError('bad-request') so it answers 400 and never reaches the lock logic half-understood.
 */
export function parseIfHeader(header: string): IfList[] {
  const lists: IfList[] = [];
  let i = 0;
  let resource: string | null = null;
  const fail = (why: string): never => {
    throw new KuraError('bad-request', `bad If header: ${why}`);
  };
  const skipSpace = () => {
    while (i < header.length && /\s/.test(header[i] as string)) i++;
  };
  const readUntil = (close: string): string => {
    const end = header.indexOf(close, i + 1);
    if (end < 0) fail(`missing "${close}"`);
    const inner = header.slice(i + 1, end);
    i = end + 1;
    return inner;
  };
  for (skipSpace(); i < header.length; skipSpace()) {
    const ch = header[i];
    if (ch === '<') {
      resource = readUntil('>');
      skipSpace();
      if (header[i] !== '(') fail('a resource tag must be followed by a list');
    } else if (ch === '(') {
      lists.push({ resource, conditions: parseConditions(readUntil(')'), fail) });
    } else fail(`unexpected "${ch ?? ''}"`);
  }
  if (lists.length === 0) fail('no condition list');
  return lists;
}

function parseConditions(body: string, fail: (why: string) => never): Condition[] {
  const out: Condition[] = [];
  const re = /\s*(Not\s+)?(?:<([^>]*)>|\[([^\]]*)\])\s*/giy;
  let pos = 0;
  while (pos < body.length) {
    re.lastIndex = pos;
    const m = re.exec(body);
    if (!m) {
      if (body.slice(pos).trim() === '') break;
      fail('a list holds something other than state tokens and entity tags');
    }
    const [, not, token, etag] = m;
    if (token !== undefined && !/^[a-z][a-z0-9+.-]*:\S+$/i.test(token)) fail('a state token is not an absolute URI');
    out.push({ not: Boolean(not), token, etag });
    pos = re.lastIndex;
  }
  if (out.length === 0) fail('an empty list');
  return out;
}

/** What the If evaluation needs to know about one resource. */
export interface ResourceState {
  etag: string | null;
  lockTokens: string[];
}

/** True when at least one list holds: every condition in it is met (RFC 4918 §10.4.3). */
export function evaluateIf(lists: IfList[], stateOf: (resource: string | null) => ResourceState): boolean {
  return lists.some((list) => {
    const state = stateOf(list.resource);
    return list.conditions.every((c) => {
      const met = c.token !== undefined ? state.lockTokens.includes(c.token) : sameEtag(c.etag, state.etag);
      return c.not ? !met : met;
    });
  });
}

function sameEtag(wanted: string | undefined, actual: string | null): boolean {
  if (actual === null || wanted === undefined) return false;
  return wanted.replace(/^W\//, '') === actual.replace(/^W\//, '');
}

/** Every lock token the client submitted in the header (the ones it claims to hold). */
export function submittedTokens(lists: IfList[]): Set<string> {
  const tokens = new Set<string>();
  for (const l of lists) for (const c of l.conditions) if (c.token && !c.not) tokens.add(c.token);
  return tokens;
}
