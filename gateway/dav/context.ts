import type { Request, Response } from 'express';
import type { PreviewMaker } from '../../browse/dav.js';
import { readOnly } from '../../browse/errors.js';
import { KuraError } from '../errors.js';
import type { DeadPropStore } from '../storage/dead-props.js';
import type { BlobIndex } from '../storage/blob-index.js';
import type { Entry, FileArea, SpaceGuard } from '../storage/file-area.js';
import { encodePath, parseUrlPath } from '../storage/paths.js';
import type { LockManager } from './locks.js';
import { evaluateIf, parseIfHeader, submittedTokens, type IfList } from './if-header.js';

/** The caller's own area, chosen from the authenticated user; nothing in the URL can change it. */
export interface UserSpace {
  id: string;
  userName: string;
  files: FileArea;
  /** The agent's protocol area /.kura/ (packs, snapshot records, keys, config): read-only to DAV verbs. */
  kura: FileArea;
  index: BlobIndex;
  props: DeadPropStore;
  space: SpaceGuard;
  quotaBytes: number;
  /** The contract's limit on snapshot records (all hosts together). */
  maxSnapshots: number;
  /**
   * Whether the caller may delete in /.kura/ (forget snapshots, prune packs): only a certificate
   * issued with the delete right; every other credential is append-only there.
   */
  mayDelete: boolean;
  usedBytes: () => Promise<number>;
  /** Where Finder's AppleDouble and .DS_Store files are kept aside (os-files.ts). */
  osFilesDir: string;
  /** Image previews (?thumbnail=N) of /files/, cached in the area's meta folder. */
  previews: PreviewMaker;
}

export interface DavContext {
  req: Request;
  res: Response;
  user: UserSpace;
  locks: LockManager;
  /** The request path as validated segments, e.g. ['files', 'photos', 'a.jpg']. */
  path: string[];
  /** The parsed If header, or null when there is none. */
  ifLists: IfList[] | null;
}

/** A resource as DAV sees it: a real entry under /files/ or one of the read-only virtual folders. */
export interface Resource extends Entry {
  path: string[];
  writable: boolean;
}

const started = new Date();
const FILES = 'files';
const KURA = '.kura';
/** The root lists these; /.kura/ exists too but stays out of casual browsing. */
const VIRTUAL_FOLDERS = ['files', 'snapshots'];

function virtualFolder(path: string[], name: string): Resource {
  return {
    path,
    name,
    type: 'collection',
    size: 0,
    mtime: started,
    birthtime: started,
    etag: `"v-${started.getTime().toString(16)}"`,
    writable: false,
  };
}

/** The resource at path, or null. */
export async function statResource(ctx: DavContext, path: string[]): Promise<Resource | null> {
  if (path.length === 0) return virtualFolder(path, '');
  if (path.length === 1 && path[0] === 'snapshots') return virtualFolder(path, 'snapshots');
  if (path[0] === KURA) return statKura(ctx, path);
  if (path[0] !== FILES) return null;
  const entry = await ctx.user.files.stat(path.slice(1));
  return entry ? { ...entry, name: path.length === 1 ? FILES : entry.name, path, writable: true } : null;
}

async function statKura(ctx: DavContext, path: string[]): Promise<Resource | null> {
  if (path.length === 1) return virtualFolder(path, KURA);
  const entry = await ctx.user.kura.stat(path.slice(1));
  return entry ? { ...entry, path, writable: false } : null;
}

/** The members of a collection resource. */
export async function listResources(ctx: DavContext, path: string[]): Promise<Resource[]> {
  if (path.length === 0) {
    const found = await Promise.all(VIRTUAL_FOLDERS.map((n) => statResource(ctx, [n])));
    return found.filter((r): r is Resource => r !== null);
  }
  if (path[0] === KURA) {
    const entries = await ctx.user.kura.list(path.slice(1));
    return entries.map((e) => ({ ...e, path: [...path, e.name], writable: false }));
  }
  if (path[0] !== FILES) return [];
  const entries = await ctx.user.files.list(path.slice(1));
  return entries.map((e) => ({ ...e, path: [...path, e.name], writable: true }));
}

/** The path inside the file area for a write; throws read-only outside /files/ (and for /files itself). */
export function writablePath(path: string[], allowAreaRoot = false): string[] {
  if (path[0] === 'snapshots') throw readOnly();
  if (path[0] !== FILES || (path.length === 1 && !allowAreaRoot)) {
    throw new KuraError('read-only', 'read-only: only the /files/ folder can be changed');
  }
  return path.slice(1);
}

/**
 * Refuses (409 case-collision) to create a name in /files/ that differs only in case from another in
 * the same folder: Windows and macOS see one file there, so one would silently overwrite the other
 * (and on a case-insensitive disk under the gateway, it would here too). The same name is fine.
 */
export async function checkCaseCollision(ctx: DavContext, path: string[]): Promise<void> {
  if (path[0] !== FILES || path.length < 2) return;
  const name = path[path.length - 1]!;
  const fold = (n: string) => n.normalize('NFC').toLowerCase();
  const siblings = await ctx.user.files.names(path.slice(1, -1));
  if (siblings.includes(name)) return;
  const other = siblings.find((n) => fold(n) === fold(name));
  if (other !== undefined) {
    throw new KuraError(
      'conflict',
      `case-collision: "${other}" is already in this folder; names differing only in case would overwrite each other on Windows and macOS`,
    );
  }
}

/** A request header as one string (the first when repeated), or undefined. */
export function header(req: Request, name: string): string | undefined {
  const v = req.headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

export function pathKey(path: readonly string[]): string {
  return '/' + path.join('/');
}

export function hrefOf(resource: Pick<Resource, 'path' | 'type'>): string {
  return encodePath(resource.path, resource.type === 'collection');
}

/**
 * Reads the Destination header of COPY/MOVE: it must name this server and a path that validates;
 * since every path is resolved inside the caller's own area, no Destination can reach another user.
 */
export function destinationOf(req: Request): string[] {
  const raw = header(req, 'destination');
  if (typeof raw !== 'string' || raw === '') throw new KuraError('bad-request', 'bad-request: the Destination header is missing');
  const path = localPathOf(raw, req.headers.host);
  if (path === null) {
    throw new KuraError('bad-gateway-destination', 'bad-gateway-destination: the Destination is on another server');
  }
  return parseUrlPath(path);
}

/**
 * The raw (still encoded) path of a URL or absolute path when it names this host, else null. The
 * path is not normalised here, so `..` in any spelling reaches parseUrlPath and is refused there.
 */
function localPathOf(raw: string, host: string | undefined): string | null {
  if (raw.startsWith('/')) return raw;
  const m = /^https?:\/\/([^/?#]+)(\/[^?#]*)?/i.exec(raw);
  if (!m || (m[1] ?? '').toLowerCase() !== (host ?? '').toLowerCase()) return null;
  return m[2] ?? '/';
}

/** Parses the If header once per request; throws bad-request on a malformed one. */
export function readIfHeader(req: Request): IfList[] | null {
  const value = header(req, 'if');
  return value !== undefined && value.trim() !== '' ? parseIfHeader(value) : null;
}

/**
 * Applies the If header (412 when no list holds) and the write locks (423 when a lock on or above
 * any of `paths`, or below the `deep` ones, was not submitted) before a change is made.
 */
export async function checkWrite(ctx: DavContext, paths: string[][], deep: string[][] = []): Promise<void> {
  await checkIfHeader(ctx);
  const tokens = ctx.ifLists ? submittedTokens(ctx.ifLists) : new Set<string>();
  const area = ctx.user.id;
  const locks = [...paths.flatMap((p) => ctx.locks.covering(area, pathKey(p))), ...deep.flatMap((p) => ctx.locks.within(area, pathKey(p)))];
  const held = (l: { token: string }) => tokens.has(l.token);
  const blocked = locks.some((l) =>
    l.scope === 'exclusive' ? !held(l) : !locks.some((o) => o.scope === 'shared' && o.root === l.root && held(o)),
  );
  if (blocked) throw new KuraError('locked', 'locked: the resource is locked and the request did not submit its lock token');
}

/** Evaluates the If header against the current state; throws precondition-failed when it does not hold. */
export async function checkIfHeader(ctx: DavContext): Promise<void> {
  if (!ctx.ifLists) return;
  const states = new Map<string, { etag: string | null; lockTokens: string[] }>();
  for (const list of ctx.ifLists) {
    const key = list.resource ?? '';
    if (states.has(key)) continue;
    const path = list.resource === null ? ctx.path : taggedPath(ctx, list.resource);
    const resource = path ? await statResource(ctx, path) : null;
    const lockTokens = path ? ctx.locks.covering(ctx.user.id, pathKey(path)).map((l) => l.token) : [];
    states.set(key, { etag: resource?.type === 'file' ? resource.etag : null, lockTokens });
  }
  const holds = evaluateIf(ctx.ifLists, (r) => states.get(r ?? '') ?? { etag: null, lockTokens: [] });
  if (!holds) throw new KuraError('precondition-failed', 'precondition-failed: the If header does not hold');
}

function taggedPath(ctx: DavContext, resource: string): string[] | null {
  const path = localPathOf(resource, ctx.req.headers.host);
  try {
    return path === null ? null : parseUrlPath(path);
  } catch {
    return null;
  }
}
