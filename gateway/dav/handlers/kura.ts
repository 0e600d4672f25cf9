import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import {
  FormatError,
  decodeConfig,
  decodeSnapshotEnvelope,
  decodeJob,
  encodeJob,
  mayReplace,
  JOB_ID,
  INDEX_EPOCH,
  blobTypeToCode,
  encodeIndex,
  isValidHost,
  readPackTrailer,
  verifyPlainBlob,
  type PackEntry,
} from '../../../format/index.js';
import { KuraError } from '../../errors.js';
import type { SpaceGuard } from '../../storage/file-area.js';
import { acceptBody, readSmallBody } from '../body.js';
import { destinationOf, header, type DavContext } from '../context.js';
import { prepaid } from './write.js';

const HEX64 = /^[0-9a-f]{64}$/;
const MAX_PACK = 128 << 20;
const MAX_RECORD = 1 << 20;

/**
 * PUT into the agent's protocol area /.kura/ (DESIGN.md, "What a user sees"): the repository config,
 * wrapped keys, packs and snapshot records. Everything here is written once and never overwritten;
 * a repeat PUT of the same bytes is a harmless no-op. Nothing is visible before it is verified.
 */
export async function putKura(ctx: DavContext): Promise<void> {
  const [, kind, a, b] = ctx.path;
  const n = ctx.path.length;
  if (kind === 'config' && n === 2) return putRecord(ctx, (bytes) => void decodeConfig(bytes));
  if (kind === 'keys' && n === 3 && a) return putRecord(ctx, (bytes) => requireHashName(bytes, a));
  if (kind === 'snapshots' && n === 4 && a && b) return putSnapshot(ctx, a, b);
  if (kind === 'packs' && n === 4 && a && b) return putPack(ctx, a, b);
  if (kind === 'log' && n === 3 && a) return putJob(ctx, a);
  throw new KuraError(
    'forbidden',
    'forbidden: the agent area takes only config, keys/<id>, packs/<xx>/<id>, snapshots/<host>/<id> and log/<job id>',
  );
}

/**
 * DELETE in /.kura/, with the delete right only: a snapshot record (forget) or a pack in the trash
 * (the last step of prune, which frees its space). Nothing else in the area is ever deleted.
 */
export async function deleteKura(ctx: DavContext): Promise<void> {
  requireDeleteRight(ctx);
  const [, kind, a, b] = ctx.path;
  const segs = ctx.path.slice(1);
  if (ctx.path.length !== 4 || !a || !b || (kind !== 'snapshots' && kind !== 'trash')) {
    throw new KuraError(
      'forbidden',
      'forbidden: in the agent area only snapshots/<host>/<id> (forget) and trash/<xx>/<id> (prune) can be deleted',
    );
  }
  const remove = async () => {
    const entry = await ctx.user.kura.stat(segs);
    if (!entry || entry.type !== 'file') throw new KuraError('not-found', `no such ${kind === 'trash' ? 'pack in the trash' : 'snapshot'}`);
    await ctx.user.space.release(await ctx.user.kura.remove(segs));
    ctx.res.status(204).end();
  };
  return kind === 'snapshots' ? oneAtATime(`snapshots:${ctx.user.id}`, remove) : oneAtATime(`pack:${ctx.user.id}/${b}`, remove);
}

/**
 * MOVE in /.kura/, with the delete right only, between packs/<xx>/<id> and trash/<xx>/<id> (prune):
 * into the trash, the pack leaves the index first (no backup starting after this counts on its blobs),
 * then its file moves; back from the trash, its trailer is read again and it is indexed again. The
 * space it takes is counted until it is deleted from the trash. A repeat of a done move is a no-op.
 */
export async function moveKura(ctx: DavContext): Promise<void> {
  requireDeleteRight(ctx);
  const to = destinationOf(ctx.req);
  const [, kind, prefix, id] = ctx.path;
  const [top, toKind, toPrefix, toId] = to;
  const isPack = (k: string | undefined, p: string | undefined, i: string | undefined) =>
    (k === 'packs' || k === 'trash') && i !== undefined && HEX64.test(i) && p === i.slice(0, 2);
  if (
    ctx.path.length !== 4 ||
    to.length !== 4 ||
    top !== '.kura' ||
    !isPack(kind, prefix, id) ||
    !isPack(toKind, toPrefix, toId) ||
    id !== toId ||
    kind === toKind
  ) {
    throw new KuraError('forbidden', 'forbidden: in the agent area a pack only moves from packs/<xx>/<id> to trash/<xx>/<id> and back');
  }
  const from = ctx.path.slice(1);
  const dest = to.slice(1);
  await oneAtATime(`pack:${ctx.user.id}/${id}`, async () => {
    const [here, there] = await Promise.all([ctx.user.kura.stat(from), ctx.user.kura.stat(dest)]);
    if (!here) {
      if (!there) throw new KuraError('not-found', 'no such pack');
      ctx.res.status(204).end();
      return;
    }
    if (there)
      throw new KuraError('exists', 'precondition-failed: the pack is in both packs/ and trash/; ask the operator to run kura admin check');
    if (toKind === 'trash') {
      await ctx.user.index.remove(new Set([id as string]));
      await ctx.user.kura.move(from, dest, { createParents: true });
    } else {
      const config = await readConfig(ctx);
      const entries = await asFormatRefusalAsync(() => verifyPack(join(ctx.user.kura.root, ...from), config.encrypted));
      await ctx.user.kura.move(from, dest, { createParents: true });
      await ctx.user.index.add(id as string, toIndexed(entries));
    }
    ctx.res.status(201).end();
  });
}

function requireDeleteRight(ctx: DavContext): void {
  if (!ctx.user.mayDelete) {
    throw new KuraError(
      'forbidden',
      'append-only: this credential may add backups but not delete or move them; forget and prune need a certificate with the delete right (kura admin cert issue USER --delete-right)',
    );
  }
}

/**
 * GET /.kura/index?since=G&epoch=E: the blobs the user holds, added after generation G; from the
 * start when E is not the index's epoch any more (packs have left it since).
 */
export async function getIndex(ctx: DavContext): Promise<void> {
  const query = new URLSearchParams(ctx.req.url.split('?')[1] ?? '');
  const raw = query.get('since') ?? '0';
  const epoch = query.get('epoch') ?? undefined;
  if (!/^\d{1,15}$/.test(raw)) throw new KuraError('bad-request', 'bad-request: since must be a generation number');
  if (epoch !== undefined && !INDEX_EPOCH.test(epoch)) throw new KuraError('bad-request', 'bad-request: epoch must be 1-32 hex digits');
  const page = await ctx.user.index.since(Number(raw), epoch);
  const body = encodeIndex(page);
  ctx.res.status(200);
  ctx.res.setHeader('Content-Type', 'application/json');
  ctx.res.setHeader('Cache-Control', 'no-store');
  ctx.res.setHeader('Content-Length', Buffer.byteLength(body));
  ctx.res.end(ctx.req.method === 'HEAD' ? undefined : body);
}

/**
 * A snapshot record commits a backup: refused with 403 snapshot-limit-reached when the contract's
 * limit is reached (a repeat of a stored record is not a new snapshot). One at a time per user, so two
 * agents cannot both take the last place.
 */
function putSnapshot(ctx: DavContext, host: string, id: string): Promise<void> {
  return oneAtATime(`snapshots:${ctx.user.id}`, async () => {
    if (!(await ctx.user.kura.stat(ctx.path.slice(1)))) {
      const stored = await countSnapshots(ctx);
      const max = ctx.user.maxSnapshots;
      if (stored >= max) {
        throw new KuraError(
          'snapshot-limit-reached',
          `snapshot-limit-reached: the contract allows ${max} snapshots and ${stored} are stored; forget old snapshots to make room, or ask the operator to raise the limit`,
        );
      }
    }
    await putRecord(ctx, (bytes) => checkSnapshot(bytes, host, id));
  });
}

/** Runs fn after every earlier call with the same key has settled (this process only). */
function oneAtATime(key: string, fn: () => Promise<void>): Promise<void> {
  const next = (chains.get(key) ?? Promise.resolve()).then(fn);
  const settled = next.catch(() => undefined);
  chains.set(key, settled);
  void settled.then(() => {
    if (chains.get(key) === settled) chains.delete(key);
  });
  return next;
}

const chains = new Map<string, Promise<unknown>>();

/** Snapshot records stored for every host. */
async function countSnapshots(ctx: DavContext): Promise<number> {
  if (!(await ctx.user.kura.stat(['snapshots']))) return 0;
  const hosts = (await ctx.user.kura.list(['snapshots'])).filter((e) => e.type === 'collection');
  const counts = await Promise.all(
    hosts.map(async (h) => (await ctx.user.kura.list(['snapshots', h.name])).filter((e) => e.type !== 'collection').length),
  );
  return counts.reduce((a, b) => a + b, 0);
}

/**
 * The backup log: a job's record, PUT when it starts, while it runs and when it ends. The gateway
 * stamps updatedAt with its own clock (so a silent job shows as interrupted whatever the PC's clock
 * says); a record of a job that has ended is never replaced.
 */
async function putJob(ctx: DavContext, name: string): Promise<void> {
  if (!JOB_ID.test(name)) throw new KuraError('bad-request', 'bad-request: a job record is stored at log/<yyyymmddThhmmssZ>-<8 hex>');
  const bytes = Buffer.from(await readSmallBody(ctx.req, ctx.res, MAX_RECORD), 'utf8');
  const job = asFormatRefusal(() => decodeJob(bytes));
  if (job.id !== name) throw new KuraError('bad-request', 'bad-request: the job record is stored under its own id');
  const stamped = encodeJob({ ...job, updatedAt: new Date().toISOString() });
  const segs = ctx.path.slice(1);
  return oneAtATime(`log:${ctx.user.id}/${name}`, async () => {
    const existed = await ctx.user.kura.stat(segs);
    if (existed) {
      if (!mayReplace(decodeJob(await readStored(ctx, segs)), job)) {
        throw new KuraError('forbidden', 'append-only: this job has ended (or is another job) and its record is never changed');
      }
    }
    await ctx.user.kura.writeFile(segs, Readable.from([stamped]), ctx.user.space, { createParents: true });
    ctx.res.status(existed ? 204 : 201).end();
  });
}

/** A small stored record of the agent area, whole. */
async function readStored(ctx: DavContext, segs: string[]): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of ctx.user.kura.openRead(segs)) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

async function putRecord(ctx: DavContext, check: (bytes: Buffer) => void): Promise<void> {
  const bytes = Buffer.from(await readSmallBody(ctx.req, ctx.res, MAX_RECORD), 'utf8');
  asFormatRefusal(() => check(bytes));
  const segs = ctx.path.slice(1);
  if (await ctx.user.kura.stat(segs)) return sameOrRefuse(ctx, segs, bytes);
  await ctx.user.kura.writeFile(segs, Readable.from([bytes]), ctx.user.space, { createParents: true });
  ctx.res.status(201).end();
}

async function sameOrRefuse(ctx: DavContext, segs: string[], bytes: Buffer): Promise<void> {
  if (!(await readStored(ctx, segs)).equals(bytes)) {
    throw new KuraError('forbidden', 'append-only: this record exists and is never overwritten');
  }
  ctx.res.status(204).end();
}

async function putPack(ctx: DavContext, prefix: string, id: string): Promise<void> {
  if (!HEX64.test(id) || prefix !== id.slice(0, 2))
    throw new KuraError('bad-request', 'bad-pack: a pack is stored at packs/<first 2 hex>/<64 hex id>');
  const config = await readConfig(ctx);
  const segs = ctx.path.slice(1);
  if (await ctx.user.kura.stat(segs)) {
    await ctx.user.index.add(id, toIndexed(await verifyPack(join(ctx.user.kura.root, ...segs), true)));
    ctx.res.status(204).end();
    return;
  }
  const declared = Number(header(ctx.req, 'content-length') ?? NaN);
  if (declared > MAX_PACK) throw new KuraError('body-too-large', `body-too-large: packs are at most ${MAX_PACK >> 20} MiB`);
  const budget = Number.isFinite(declared) ? declared : 0;
  await ctx.user.space.reserve(budget);
  acceptBody(ctx.req, ctx.res);
  const hash = createHash('sha256');
  let entries: PackEntry[] = [];
  const guard: SpaceGuard = prepaid(ctx.user.space, budget);
  await ctx.user.kura.writeFile(segs, ctx.req, guard, {
    createParents: true,
    observe: (chunk) => hash.update(chunk),
    verify: async (tmp) => {
      if (hash.digest('hex') !== id) throw new KuraError('bad-request', "bad-pack: the pack's bytes do not match its name");
      entries = await asFormatRefusalAsync(() => verifyPack(tmp, config.encrypted));
    },
  });
  await ctx.user.index.add(id, toIndexed(entries));
  ctx.res.status(201).end();
}

async function verifyPack(path: string, encrypted: boolean): Promise<PackEntry[]> {
  const fh = await open(path, 'r');
  try {
    const { size } = await fh.stat();
    const readAt = async (offset: number, length: number) => {
      const buf = Buffer.alloc(length);
      const { bytesRead } = await fh.read(buf, 0, length, offset);
      if (bytesRead !== length) throw new KuraError('bad-request', 'bad-pack: the pack ended early');
      return buf;
    };
    const entries = await readPackTrailer(size, readAt);
    if (!encrypted) for (const e of entries) verifyPlainBlob(await readAt(e.offset, e.length), e.id, e.plainLength);
    return entries;
  } finally {
    await fh.close();
  }
}

function toIndexed(entries: PackEntry[]) {
  return entries.map((e) => ({
    id: e.id,
    type: blobTypeToCode(e.type),
    offset: e.offset,
    length: e.length,
    plainLength: e.plainLength,
  }));
}

async function readConfig(ctx: DavContext): Promise<{ encrypted: boolean }> {
  const entry = await ctx.user.kura.stat(['config']);
  if (!entry) throw new KuraError('conflict', 'conflict: this area has no backup repository yet: run `kura key init` first');
  return decodeConfig(await readStored(ctx, ['config']));
}

function requireHashName(bytes: Buffer, name: string): void {
  if (createHash('sha256').update(bytes).digest('hex') !== name) {
    throw new KuraError('bad-request', "bad-request: a record's name must be the SHA-256 of its bytes");
  }
}

function checkSnapshot(bytes: Buffer, host: string, id: string): void {
  if (!isValidHost(host)) throw new KuraError('bad-request', 'bad-request: a host name is 1-64 letters, digits, ".", "_" or "-"');
  requireHashName(bytes, id);
  const envelope = decodeSnapshotEnvelope(bytes);
  if (envelope.host !== host) throw new KuraError('bad-request', 'bad-request: the snapshot names another host than its path');
}

function asFormatRefusal<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw err instanceof FormatError ? new KuraError('bad-request', `${err.code}: ${err.message}`) : err;
  }
}

async function asFormatRefusalAsync<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw err instanceof FormatError ? new KuraError('bad-request', `${err.code}: ${err.message}`) : err;
  }
}
