import { Readable } from 'node:stream';
import { join } from 'node:path';
import { serveView, type ViewServer } from '../../browse/dav.js';
import { Thumbnailer } from '../../browse/thumbnails.js';
import { readOnly } from '../../browse/errors.js';
import { SnapshotView, type ViewNode } from '../../browse/view.js';
import { KuraError } from '../errors.js';
import { areaLayout, type DataLayout } from '../storage/data-dir.js';
import { checkName } from '../storage/paths.js';
import { DiskSnapshotSource } from '../storage/snapshot-source.js';
import { checkCaseCollision, checkWrite, destinationOf, header, pathKey, statResource, writablePath, type DavContext } from './context.js';
import type { SpaceGuard } from '../storage/file-area.js';

/** Users whose view (and its decoded trees) is kept between requests. */
const KEPT_VIEWS = 32;

/** One snapshot view per user (the most recent KEPT_VIEWS), over that user's own area. */
export class SnapshotViews {
  private readonly views = new Map<string, ViewServer>();

  constructor(private readonly layout: DataLayout) {}

  of(userId: string): ViewServer {
    const known = this.views.get(userId);
    if (known) {
      this.views.delete(userId);
      this.views.set(userId, known);
      return known;
    }
    const dirs = areaLayout(this.layout, userId);
    const view = new SnapshotView(new DiskSnapshotSource(dirs));
    const server: ViewServer = { view, base: ['snapshots'], previews: new Thumbnailer(join(dirs.meta, 'thumbnails')) };
    this.views.set(userId, server);
    for (const id of this.views.keys()) if (this.views.size > KEPT_VIEWS) this.views.delete(id);
    return server;
  }
}

/**
 * A request below /snapshots/: a COPY out of a snapshot into /files/ is done here, on the server;
 * everything else is the read-only view's (browse/dav.ts), which refuses writes with 403.
 */
export async function snapshotRequest(ctx: DavContext, server: ViewServer): Promise<void> {
  if (ctx.req.method === 'COPY' && ctx.path.length > 1) return copyOut(ctx, server);
  await serveView(server, ctx.req, ctx.res, ctx.path.slice(1));
}

/**
 * COPY from a snapshot into /files/ (RFC 4918 §9.8): the whole size is reserved against the quota
 * first (507 before a byte is written), files are written one by one through the usual temp file
 * and rename, and on any failure what was copied is removed and the space given back.
 */
async function copyOut(ctx: DavContext, server: ViewServer): Promise<void> {
  const destPath = destinationOf(ctx.req);
  if (destPath[0] === 'snapshots') throw readOnly();
  const to = writablePath(destPath);
  const node = await server.view.resolve(ctx.path.slice(1));
  if (!node) throw new KuraError('not-found', 'no such file or folder');
  const depth = header(ctx.req, 'depth') ?? 'infinity';
  if (depth !== 'infinity' && depth !== '0') throw new KuraError('bad-request', `bad-request: COPY does not take Depth: ${depth}`);
  await ctx.user.files.requireParentCollection(to);
  await checkCaseCollision(ctx, destPath);
  const existing = await statResource(ctx, destPath);
  if (existing && (header(ctx.req, 'overwrite') ?? 'T').toUpperCase() === 'F')
    throw new KuraError('precondition-failed', 'precondition-failed: the destination exists and Overwrite is F');
  await checkWrite(ctx, [destPath, destPath.slice(0, -1)], [destPath]);
  const deep = depth === 'infinity';
  const total = await sizeOf(server, node, deep);
  // Space is reserved before the destination it replaces is removed: a 507 leaves that in place.
  const replaced = existing ? await ctx.user.files.sizeOf(to) : 0;
  const extra = Math.max(0, total - replaced);
  await ctx.user.space.reserve(extra);
  let freed = 0;
  if (existing) {
    freed = await ctx.user.files.remove(to).catch(async (err: unknown) => {
      await ctx.user.space.release(extra);
      throw err;
    });
    await ctx.user.props.remove(to);
    ctx.locks.removeWithin(ctx.user.id, pathKey(destPath));
  }
  // The bytes freed by the removal are still counted as used: they fund the copy, with the reservation.
  const pool = reservedPool(ctx.user.space, extra + freed);
  try {
    await copyNode(ctx, server, node, to, deep, pool.guard);
  } catch (err) {
    await ctx.user.space.release(await ctx.user.files.remove(to).catch(() => 0));
    throw err;
  } finally {
    await pool.drain();
  }
  ctx.res.status(existing ? 204 : 201).end();
}

async function sizeOf(server: ViewServer, node: ViewNode, deep: boolean): Promise<number> {
  if (node.type === 'file') return node.size;
  if (!deep) return 0;
  let total = 0;
  for (const member of await server.view.list(node)) total += await sizeOf(server, member, true);
  return total;
}

async function copyNode(ctx: DavContext, server: ViewServer, node: ViewNode, to: string[], deep: boolean, guard: SpaceGuard) {
  if (node.type === 'collection') {
    await ctx.user.files.makeCollection(to);
    if (!deep) return;
    // A tree may hold names /files/ cannot (over 250 bytes, control characters): the copy stops with 400 bad-path.
    for (const member of await server.view.list(node)) await copyNode(ctx, server, member, [...to, checkName(member.name)], true, guard);
    return;
  }
  const bytes = node.size > 0 ? await server.view.open(node, 0, node.size - 1) : [];
  await ctx.user.files.writeFile(to, Readable.from(bytes, { objectMode: false }), guard);
}

/**
 * A guard drawing on space already reserved for the whole copy, so that the files' writes (which
 * reserve in 4 MiB blocks and give back the rest) cost no metadata update each; only what exceeds
 * the pool reaches the real guard. drain() gives back what is left in the pool.
 */
function reservedPool(real: SpaceGuard, reserved: number): { guard: SpaceGuard; drain: () => Promise<void> } {
  let left = reserved;
  return {
    guard: {
      reserve: async (bytes) => {
        const taken = Math.min(left, bytes);
        if (bytes > taken) await real.reserve(bytes - taken);
        left -= taken;
      },
      release: async (bytes) => {
        left += bytes;
      },
    },
    drain: async () => {
      const back = left;
      left = 0;
      await real.release(back);
    },
  };
}
