import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { KuraError } from '../errors.js';
import type { Admission } from '../policy/policy.js';
import { DeadPropStore } from '../storage/dead-props.js';
import { areaLayout, type DataLayout } from '../storage/data-dir.js';
import { FileArea } from '../storage/file-area.js';
import { parseUrlPath } from '../storage/paths.js';
import { readIfHeader, type DavContext, type UserSpace } from './context.js';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { BlobIndex } from '../storage/blob-index.js';
import { copyOrMove } from './handlers/copy-move.js';
import { deleteKura, moveKura, putKura } from './handlers/kura.js';
import { lock, unlock } from './handlers/lock.js';
import { propfind } from './handlers/propfind.js';
import { proppatch } from './handlers/proppatch.js';
import { ALLOWED_METHODS, get, options } from './handlers/read.js';
import { del, mkcol, put } from './handlers/write.js';
import { sendError } from './http-errors.js';
import { LockManager } from './locks.js';
import { snapshotRequest, SnapshotViews } from './snapshots.js';
import { isOsFile, osFileHandler } from './os-files.js';
import { Thumbnailer } from '../../browse/thumbnails.js';

type Handler = (ctx: DavContext) => Promise<void>;

const HANDLERS: Record<string, Handler> = {
  OPTIONS: options,
  GET: get,
  HEAD: get,
  PUT: put,
  DELETE: del,
  MKCOL: mkcol,
  COPY: copyOrMove,
  MOVE: copyOrMove,
  PROPFIND: propfind,
  PROPPATCH: proppatch,
  LOCK: lock,
  UNLOCK: unlock,
};

/** What the DAV front needs from the rest of the gateway: an admission decision and usage figures. */
export interface DavDeps {
  layout: DataLayout;
  admit: (req: Request, res: Response) => Promise<Admission>;
  usedBytes: (userName: string) => Promise<number>;
  locks?: LockManager;
  /** The users' snapshot views, shared with the console so that a tree is decoded once for both. */
  views?: SnapshotViews;
}

/**
 * The WebDAV front as one express handler. It reads top to bottom: validate the path → admit the
 * caller (identity, contract, access limit) → choose the caller's own area → run the method.
 * Whatever a handler throws becomes a response for that request only.
 */
export function davHandler(deps: DavDeps): RequestHandler {
  const locks = deps.locks ?? new LockManager();
  const prepared = new Map<string, Promise<void>>();
  const views = deps.views ?? new SnapshotViews(deps.layout);
  return (req: Request, res: Response, _next: NextFunction) => {
    const requestId = String(res.getHeader('X-Request-Id') ?? '');
    void run(req, res, deps, locks, prepared, views).catch((err: unknown) => {
      res.locals.error = err;
      sendError(res, err, requestId);
    });
  };
}

async function run(
  req: Request,
  res: Response,
  deps: DavDeps,
  locks: LockManager,
  prepared: Map<string, Promise<void>>,
  views: SnapshotViews,
): Promise<void> {
  const path = parseUrlPath(req.url);
  const admission = await deps.admit(req, res);
  res.locals.user = admission.principal.user.name;
  const handler = HANDLERS[req.method];
  if (!handler) {
    res.setHeader('Allow', ALLOWED_METHODS);
    throw new KuraError('method-not-allowed', `method-not-allowed: ${req.method} is not supported here`);
  }
  const user = await openSpace(deps, admission, prepared);
  const ctx: DavContext = { req, res, user, locks, path, ifLists: readIfHeader(req) };
  if (path[0] === 'snapshots' && req.method !== 'OPTIONS') return snapshotRequest(ctx, views.of(user.id));
  const osFile = isOsFile(path) ? osFileHandler(req.method) : undefined;
  if (osFile) return osFile(ctx);
  await (path[0] === '.kura' ? (kuraHandler(req.method) ?? handler) : handler)(ctx);
}

/** The agent's protocol area has its own PUT, DELETE, MOVE and index; other verbs see it read-only. */
function kuraHandler(method: string): Handler | undefined {
  return ({ PUT: putKura, DELETE: deleteKura, MOVE: moveKura } as Record<string, Handler>)[method];
}

async function openSpace(deps: DavDeps, admission: Admission, prepared: Map<string, Promise<void>>): Promise<UserSpace> {
  const { user } = admission.principal;
  const dirs = areaLayout(deps.layout, user.id);
  const files = new FileArea(dirs.files, dirs.tmp);
  const kura = new FileArea(dirs.kura, dirs.tmp);
  let ready = prepared.get(user.id);
  if (!ready) {
    ready = files
      .prepare()
      .then(() => mkdir(dirs.kura, { recursive: true }))
      .then(() => undefined);
    prepared.set(user.id, ready);
  }
  await ready;
  return {
    id: user.id,
    userName: user.name,
    files,
    kura,
    index: new BlobIndex(join(dirs.meta, 'index.ndjson')),
    props: new DeadPropStore(dirs.props),
    space: admission.space,
    quotaBytes: admission.contract.quotaBytes,
    maxSnapshots: admission.contract.maxSnapshots,
    mayDelete: admission.principal.certificate?.mayDelete === true,
    usedBytes: () => deps.usedBytes(user.name),
    previews: new Thumbnailer(join(dirs.meta, 'thumbnails'), false),
    osFilesDir: join(dirs.meta, 'os-files'),
  };
}
