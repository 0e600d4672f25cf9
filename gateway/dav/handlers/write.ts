import { KuraError } from '../../errors.js';
import type { SpaceGuard } from '../../storage/file-area.js';
import { acceptBody, hasBody } from '../body.js';
import { isStorageFull } from '../http-errors.js';
import { checkCaseCollision, checkWrite, header, pathKey, statResource, writablePath, type DavContext } from '../context.js';

/**
 * PUT: refuses with 507 before reading a byte when Content-Length does not fit the quota (the file it
 * replaces counts as free, since the new version takes its place); a chunked
 * body is counted as it streams and stopped at the limit. The file appears only when complete.
 */
export async function put(ctx: DavContext): Promise<void> {
  const segs = writablePath(ctx.path);
  const existing = await statResource(ctx, ctx.path);
  if (existing?.type === 'collection') throw new KuraError('method-not-allowed', 'method-not-allowed: a folder has that name');
  await checkWrite(ctx, [ctx.path, ctx.path.slice(0, -1)]);
  await ctx.user.files.requireParentCollection(segs);
  await checkCaseCollision(ctx, ctx.path);
  const declared = declaredLength(ctx);
  const budget = Math.max(0, (declared ?? 0) - (existing?.size ?? 0));
  await ctx.user.space.reserve(budget);
  acceptBody(ctx.req, ctx.res);
  const result = await ctx.user.files.writeFile(segs, ctx.req, prepaid(ctx.user.space, budget)).catch((err: unknown) => {
    // A full disk stops the copy and so destroys the request too: it is not the client's doing.
    if (err instanceof KuraError || isStorageFull(err) || !(ctx.req.readableAborted || ctx.req.destroyed)) throw err;
    throw new KuraError('upload-aborted', 'upload-aborted: the client stopped sending');
  });
  const now = await statResource(ctx, ctx.path);
  if (now) ctx.res.setHeader('ETag', now.etag);
  ctx.res.status(result.created ? 201 : 204).end();
}

function declaredLength(ctx: DavContext): number | null {
  const raw = ctx.req.headers['content-length'];
  if (raw === undefined || ctx.req.headers['transfer-encoding'] !== undefined) return null;
  if (!/^\d+$/.test(raw)) throw new KuraError('bad-request', 'bad-request: Content-Length is not a number');
  return Number(raw);
}

/**
 * A guard over space already reserved for the declared length: the first `budget` bytes are paid
 * for, later ones reserved as they come, and a release gives back the unspent budget too.
 */
export function prepaid(guard: SpaceGuard, budget: number): SpaceGuard {
  let left = budget;
  return {
    reserve: async (bytes) => {
      const fromBudget = Math.min(left, bytes);
      await guard.reserve(bytes - fromBudget);
      left -= fromBudget;
    },
    release: async (bytes) => {
      const unspent = left;
      left = 0;
      await guard.release(bytes + unspent);
    },
  };
}

/** DELETE: files and whole folders (Depth infinity only); their dead properties and locks go too. */
export async function del(ctx: DavContext): Promise<void> {
  const segs = writablePath(ctx.path);
  const depth = header(ctx.req, 'depth');
  if (depth !== undefined && depth !== 'infinity') throw new KuraError('bad-request', 'bad-request: DELETE needs Depth: infinity');
  if (!(await statResource(ctx, ctx.path))) throw new KuraError('not-found', 'no such file or folder');
  await checkWrite(ctx, [ctx.path, ctx.path.slice(0, -1)], [ctx.path]);
  const freed = await ctx.user.files.remove(segs);
  await ctx.user.space.release(freed);
  await ctx.user.props.remove(segs);
  ctx.locks.removeWithin(ctx.user.id, pathKey(ctx.path));
  ctx.res.status(204).end();
}

/** MKCOL: 201, or 405 when something exists, 409 without a parent, 415 with a body. */
export async function mkcol(ctx: DavContext): Promise<void> {
  const segs = writablePath(ctx.path);
  if (hasBody(ctx.req)) throw new KuraError('unsupported-media-type', 'unsupported-media-type: MKCOL takes no body');
  if (await statResource(ctx, ctx.path)) throw new KuraError('exists', 'method-not-allowed: something with that name exists');
  await checkWrite(ctx, [ctx.path, ctx.path.slice(0, -1)]);
  await checkCaseCollision(ctx, ctx.path);
  await ctx.user.files.makeCollection(segs);
  ctx.res.status(201).end();
}
