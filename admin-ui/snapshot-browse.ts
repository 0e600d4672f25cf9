import { pipeline } from 'node:stream/promises';
import { BrowseError } from '../browse/errors.js';
import type { ViewServer } from '../browse/dav.js';
import type { ViewNode } from '../browse/view.js';
import type { SnapshotViews } from '../gateway/dav/snapshots.js';
import { KuraError } from '../gateway/errors.js';
import { checkContract } from '../gateway/policy/contracts.js';
import { encodePath, parseUrlPath } from '../gateway/storage/paths.js';
import type { Shown, UserCtx } from './context.js';
import { sendZip, setDownloadHeaders, streamOf } from './download.js';
import { consoleStatus, reasonOf } from './errors.js';
import { html, shortTime, table, type Html } from './html.js';
import { crumbs, folderTable } from './listing.js';
import { contentTypeOf } from '../gateway/dav/live-props.js';

/** What an encrypted snapshot says in the console instead of its files. */
export const ENCRYPTED_LINE = html`Encrypted snapshots are listed by host, time and type only: the gateway never holds your key. Browse them
  with <code>kura mount</code> on your PC (it decrypts there and shows them in your file manager), or restore with
  <code>kura restore</code>.`;

/**
 * /console/snapshots/<host>/<time>/<path>: the signed-in user's plaintext snapshots, read through the
 * same SnapshotView as DAV's /snapshots/ (one tree reader, one cache). The view is the user's own,
 * chosen from the session: another user's host or time is simply not in it (404). A folder is
 * listed (`?zip` streams it), a file downloads as an attachment, `?thumbnail=N` of an image is its
 * preview from the same Thumbnailer as DAV's. An encrypted snapshot has no files here.
 */
export function browseSnapshots(views: SnapshotViews): (c: UserCtx) => Promise<Shown> {
  return async (c) => {
    try {
      return await browse(c, views.of(c.user.id));
    } catch (err) {
      if (c.res.headersSent || !(err instanceof KuraError || err instanceof BrowseError)) throw err;
      const status = consoleStatus(err);
      return {
        title: status === 404 ? 'Not found' : status === 400 ? 'Not a valid path' : 'Not available',
        status,
        body: html`<section class="card">
          <p>${reasonOf(err)}</p>
          <p><a href="/console/snapshots">Back to your hosts and snapshots</a></p>
        </section>`,
      };
    }
  };
}

async function browse(c: UserCtx, server: ViewServer): Promise<Shown> {
  if (c.req.method !== 'GET' && c.req.method !== 'HEAD')
    throw new KuraError('method-not-allowed', 'method-not-allowed: snapshots are read-only');
  const [pathPart, query = ''] = c.req.url.split('?', 2) as [string, string?];
  const segs = parseUrlPath(pathPart);
  checkContract(await c.policy.contracts.find(c.user.name), new Date());
  if (segs.length === 0) return redirect(c, '/console/snapshots');
  const node = await server.view.resolve(segs);
  if (!node) throw new KuraError('not-found', await notFoundReason(server, segs));
  const params = new URLSearchParams(query);
  if (node.type === 'file') return sendSnapshotFile(c, server, node, params.get('thumbnail'));
  if (!pathPart.endsWith('/')) return redirect(c, `/console/snapshots${encodePath(segs, true)}`);
  if (node.of.kind === 'host') return hostPage(server, segs[0] as string, node);
  if (node.of.kind !== 'tree') return redirect(c, '/console/snapshots');
  if (node.of.notice) return encryptedPage(segs, node);
  if (params.has('zip')) {
    await sendZip(c.res, segs.length > 2 ? (segs.at(-1) as string) : `${segs[0]}-${segs[1]}`, zipSource(server, segs));
    return done();
  }
  return folderPage(server, segs, node);
}

/** Which part of the path is not there: the host, the snapshot, or something inside it. */
async function notFoundReason(server: ViewServer, segs: string[]): Promise<string> {
  if (!(await server.view.resolve(segs.slice(0, 1)))) return `not-found: none of your PCs is called ${segs[0]}`;
  if (!(await server.view.resolve(segs.slice(0, 2)))) return `not-found: ${segs[0]} has no snapshot ${segs[1]}`;
  return 'not-found: this snapshot has no such file or folder';
}

async function sendSnapshotFile(c: UserCtx, server: ViewServer, node: ViewNode, thumbnail: string | null): Promise<Shown> {
  const read = async () => (node.size > 0 ? server.view.open(node, 0, node.size - 1) : []);
  if (thumbnail !== null && server.previews) {
    await server.previews.send(c.req, c.res, node, thumbnail, read);
    return done();
  }
  // Opened before any header: a file whose blobs are missing (or a baseline-only file) is a page, not a cut download.
  const bytes = await read();
  setDownloadHeaders(c.res, node.name, contentTypeOf(node.name));
  c.res.setHeader('Content-Length', String(node.size));
  c.res.status(200);
  if (c.req.method === 'HEAD' || node.size === 0) c.res.end();
  else await pipeline(streamOf(bytes), c.res);
  return done();
}

async function hostPage(server: ViewServer, host: string, node: ViewNode): Promise<Shown> {
  const rows = (await server.view.list(node)).reverse().map((s) => {
    const href = `/console/snapshots${encodePath([host, s.name], true)}`;
    const encrypted = s.of.kind === 'tree' && s.of.notice !== null;
    return [
      html`<a href="${href}">${shortTime(s.mtime.toISOString())}</a>`,
      encrypted ? html`<span class="muted">encrypted: browse it with <code>kura mount</code> on your PC</span>` : 'plaintext',
      html`<span class="mono small">${s.name}</span>`,
    ];
  });
  const body = html`<p class="crumbs"><a href="/console/snapshots">snapshots</a> / ${host}</p>
    <section class="card">${table(['Time', 'Contents', 'Folder'], rows, 'This PC has no snapshots.')}</section>`;
  return { title: `Snapshots of ${host}`, body };
}

function encryptedPage(segs: string[], node: ViewNode): Shown {
  const body = html`${snapshotCrumbs(segs)}
    <section class="card">
      <h2>This snapshot is encrypted</h2>
      <p>${ENCRYPTED_LINE}</p>
      <pre>kura mount</pre>
      <p class="muted small">Taken ${shortTime(node.mtime.toISOString())} on ${segs[0] ?? ''}.</p>
    </section>`;
  return { title: `${segs[0] ?? ''}, ${shortTime(node.mtime.toISOString())}`, body };
}

async function folderPage(server: ViewServer, segs: string[], node: ViewNode): Promise<Shown> {
  const base = `/console/snapshots${encodePath(segs.slice(0, 2), false)}`;
  const entries = await server.view.list(node);
  const here = `/console/snapshots${encodePath(segs, true)}`;
  const body = html`${snapshotCrumbs(segs)}
    <section class="card">
      ${folderTable(base, segs.slice(2), entries, 'This folder of the snapshot is empty.')}
      ${entries.length ? html`<p><a href="${here}?zip">Download this folder as a zip</a></p>` : ''}
    </section>
    <p class="muted small">
      Snapshots are read-only: downloading restores nothing on your PCs. <code>kura restore</code> puts files back in place.
    </p>`;
  const snapshot = (await server.view.resolve(segs.slice(0, 2)))?.mtime;
  const when = snapshot ? shortTime(snapshot.toISOString()) : (segs[1] ?? '');
  return { title: segs.length > 2 ? (segs.at(-1) as string) : `${segs[0] ?? ''}, ${when}`, body };
}

/** snapshots / host / time / folders…, each a link. */
function snapshotCrumbs(segs: string[]): Html {
  const [host = '', time = ''] = segs;
  const hostLink = html`<a href="/console/snapshots">snapshots</a> /
    <a href="/console/snapshots${encodePath([host], true)}">${host}</a> / `;
  return crumbs(`/console/snapshots${encodePath([host, time], false)}`, time, segs.slice(2), hostLink);
}

function zipSource(server: ViewServer, segs: string[]) {
  const at = async (rel: string[]) => {
    const node = await server.view.resolve([...segs, ...rel]);
    if (!node) throw new BrowseError('not-found', 'not-found: the snapshot changed while it was zipped');
    return node;
  };
  return {
    list: async (rel: string[]) => server.view.list(await at(rel)),
    open: async (rel: string[]) => {
      const node = await at(rel);
      return streamOf(node.size > 0 ? await server.view.open(node, 0, node.size - 1) : []);
    },
  };
}

function redirect(c: UserCtx, to: string): Shown {
  c.res.redirect(301, to);
  return done();
}

function done(): Shown {
  return { title: '', body: html`` };
}
