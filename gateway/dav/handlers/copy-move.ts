import { KuraError } from '../../errors.js';
import { checkCaseCollision, checkWrite, header, destinationOf, pathKey, statResource, writablePath, type DavContext } from '../context.js';

/**
 * COPY and MOVE (RFC 4918 §9.8-9.9) inside the caller's /files/. Overwrite: F refuses an existing
 * destination with 412; otherwise it is deleted first (its space given back). 201 when the
 * destination is new, 204 when it replaced something.
 */
export async function copyOrMove(ctx: DavContext): Promise<void> {
  const isMove = ctx.req.method === 'MOVE';
  const from = writablePath(ctx.path, false);
  const destPath = destinationOf(ctx.req);
  const to = writablePath(destPath);
  const source = await statResource(ctx, ctx.path);
  if (!source) throw new KuraError('not-found', 'no such file or folder');
  const depth = header(ctx.req, 'depth') ?? 'infinity';
  if (depth !== 'infinity' && (isMove || depth !== '0'))
    throw new KuraError('bad-request', `bad-request: ${ctx.req.method} does not take Depth: ${depth}`);
  if (pathKey(from) === pathKey(to)) throw new KuraError('forbidden', 'forbidden: source and destination are the same');
  if (pathKey(to).startsWith(pathKey(from) + '/')) throw new KuraError('conflict', 'conflict: cannot copy or move a folder into itself');
  await ctx.user.files.requireParentCollection(to);
  await checkCaseCollision(ctx, destPath);
  const existing = await statResource(ctx, destPath);
  const overwrite = (header(ctx.req, 'overwrite') ?? 'T').toUpperCase();
  if (existing && overwrite === 'F')
    throw new KuraError('precondition-failed', 'precondition-failed: the destination exists and Overwrite is F');
  const writes = isMove ? [ctx.path, ctx.path.slice(0, -1), destPath, destPath.slice(0, -1)] : [destPath, destPath.slice(0, -1)];
  await checkWrite(ctx, writes, isMove ? [ctx.path, destPath] : [destPath]);
  if (existing && !isMove) await probeSpace(ctx, from, to, depth === 'infinity' || source.type === 'file');
  if (existing) await removeDestination(ctx, to, destPath);
  if (isMove) {
    await ctx.user.files.move(from, to);
    await ctx.user.props.move(from, to);
    ctx.locks.removeWithin(ctx.user.id, pathKey(ctx.path));
  } else {
    await copyTree(ctx, from, to, depth === 'infinity', source.type === 'collection');
  }
  ctx.res.status(existing ? 204 : 201).end();
}

/**
 * Before a COPY removes the destination it replaces: would the copy fit once that space is free?
 * A 507 must leave the destination in place, not come after it is gone.
 */
async function probeSpace(ctx: DavContext, from: string[], to: string[], deep: boolean): Promise<void> {
  const needed = deep ? Math.max(0, (await ctx.user.files.sizeOf(from)) - (await ctx.user.files.sizeOf(to))) : 0;
  await ctx.user.space.reserve(needed);
  await ctx.user.space.release(needed);
}

async function removeDestination(ctx: DavContext, to: string[], destPath: string[]): Promise<void> {
  const freed = await ctx.user.files.remove(to);
  await ctx.user.space.release(freed);
  await ctx.user.props.remove(to);
  ctx.locks.removeWithin(ctx.user.id, pathKey(destPath));
}

async function copyTree(ctx: DavContext, from: string[], to: string[], deep: boolean, isCollection: boolean): Promise<void> {
  if (isCollection && !deep) {
    await ctx.user.files.makeCollection(to);
  } else {
    await ctx.user.files.copy(from, to, ctx.user.space);
  }
  await ctx.user.props.copy(from, to, deep);
}
