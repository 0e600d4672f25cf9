import type { Response } from 'express';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Thumbnailer } from '../browse/thumbnails.js';
import { KuraError } from '../gateway/errors.js';
import { checkContract } from '../gateway/policy/contracts.js';
import { areaLayout } from '../gateway/storage/data-dir.js';
import { FileArea } from '../gateway/storage/file-area.js';
import { encodePath, parseUrlPath } from '../gateway/storage/paths.js';
import { contentTypeOf } from '../gateway/dav/live-props.js';
import type { Shown, UserCtx } from './context.js';
import { sendZip, setDownloadHeaders } from './download.js';
import { html } from './html.js';
import { crumbs, folderTable } from './listing.js';

/**
 * /console/files/<path>: the signed-in user's /files/ folder (the area comes from the user, never the
 * URL; the path is validated like a DAV path). A folder is listed, `?zip` streams it as a zip, a
 * file is always sent as an attachment, and `?thumbnail=N` of an image is its preview, made by the
 * same Thumbnailer (and kept in the same cache) as DAV's `GET /files/<image>?thumbnail=N`. The
 * contract is checked as for DAV access.
 */
export async function browseFiles(c: UserCtx): Promise<Shown> {
  if (c.req.method !== 'GET' && c.req.method !== 'HEAD')
    throw new KuraError('method-not-allowed', 'method-not-allowed: the console only reads files');
  const [pathPart, query = ''] = c.req.url.split('?', 2) as [string, string?];
  const segs = parseUrlPath(pathPart);
  checkContract(await c.policy.contracts.find(c.user.name), new Date());
  const dirs = areaLayout(c.policy.layout, c.user.id);
  const area = new FileArea(dirs.files, dirs.tmp);
  const entry = segs.length === 0 ? await area.stat([]) : await area.require(segs);
  if (!entry) return { title: 'Files', body: html`<p class="empty">Your /files/ folder is empty: nothing has been uploaded yet.</p>` };
  const params = new URLSearchParams(query);
  if (entry.type === 'file') {
    const size = params.get('thumbnail');
    if (size !== null) {
      // Revalidated (no-cache with an ETag), not immutable: a file of /files/ changes under the same URL.
      const previews = new Thumbnailer(join(dirs.meta, 'thumbnails'), false);
      await previews.send(c.req, c.res, entry, size, async () => area.openRead(segs));
    } else await sendFile(c.res, area, segs, entry.name, entry.size);
    return { title: '', body: html`` };
  }
  if (!pathPart.endsWith('/')) {
    c.res.redirect(301, `/console/files${encodePath(segs, true)}`);
    return { title: '', body: html`` };
  }
  if (params.has('zip')) {
    await sendZip(c.res, segs.at(-1) ?? 'files', {
      list: async (rel) => area.list([...segs, ...rel]),
      open: async (rel) => area.openRead([...segs, ...rel]),
    });
    return { title: '', body: html`` };
  }
  const entries = await area.list(segs);
  const body = html`${crumbs('/console/files', 'files', segs)}
    <section class="card">
      ${folderTable('/console/files', segs, entries, segs.length ? 'This folder is empty.' : 'Your /files/ folder is empty: nothing has been uploaded yet.')}
      ${entries.length ? html`<p><a href="/console/files${encodePath(segs, true)}?zip">Download this folder as a zip</a></p>` : ''}
    </section>`;
  return { title: segs.length ? (segs.at(-1) ?? 'Files') : 'Files', body };
}

async function sendFile(res: Response, area: FileArea, segs: string[], name: string, size: number): Promise<void> {
  setDownloadHeaders(res, name, contentTypeOf(name));
  res.setHeader('Content-Length', String(size));
  res.status(200);
  if (res.req.method === 'HEAD' || size === 0) return void res.end();
  await pipeline(area.openRead(segs), res);
}
