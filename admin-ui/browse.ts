import type { Response } from 'express';
import { ZipArchive } from 'archiver';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { KuraError } from '../gateway/errors.js';
import { checkContract, formatSize } from '../gateway/policy/contracts.js';
import { areaLayout } from '../gateway/storage/data-dir.js';
import { FileArea } from '../gateway/storage/file-area.js';
import { encodePath, parseUrlPath } from '../gateway/storage/paths.js';
import { contentTypeOf } from '../gateway/dav/live-props.js';
import type { Shown, UserCtx } from './context.js';
import { setDownloadHeaders } from './download.js';
import { html, raw, shortTime, table } from './html.js';

const FOLDER_ICON = raw(
  '<svg class="icon" viewBox="0 0 16 16" aria-hidden="true"><path d="M1 3.5h5l1.5 1.5H15v8.5H1z" fill="#e0b252" stroke="#b7862b"/></svg>',
);
const FILE_ICON = raw(
  '<svg class="icon" viewBox="0 0 16 16" aria-hidden="true"><path d="M3 1h7l3 3v11H3z" fill="#fff" stroke="#7b8794"/><path d="M10 1v3h3" fill="none" stroke="#7b8794"/></svg>',
);

/**
 * /console/files/<path>: the signed-in user's /files/ folder (the area comes from the user, never the
 * URL; the path is validated like a DAV path). A folder is listed, `?zip` streams it as a zip, and a
 * file is always sent as an attachment. The contract is checked as for DAV access.
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
    await sendFile(c.res, area, segs, entry.name, entry.size);
    return { title: '', body: html`` };
  }
  if (!pathPart.endsWith('/')) {
    c.res.redirect(301, `/console/files${encodePath(segs, true)}`);
    return { title: '', body: html`` };
  }
  if (params.has('zip')) {
    await sendZip(c.res, area, segs, segs.at(-1) ?? 'files');
    return { title: '', body: html`` };
  }
  return { title: segs.length ? (segs.at(-1) ?? 'Files') : 'Files', body: await listing(area, segs) };
}

async function listing(area: FileArea, segs: string[]): Promise<ReturnType<typeof html>> {
  const entries = (await area.list(segs)).sort((a, b) =>
    a.type === b.type ? a.name.localeCompare(b.name) : a.type === 'collection' ? -1 : 1,
  );
  const here = `/console/files${encodePath(segs, true)}`;
  const crumbs = [html`<a href="/console/files/">files</a>`];
  segs.forEach((s, i) => crumbs.push(html` / <a href="/console/files${encodePath(segs.slice(0, i + 1), true)}">${s}</a>`));
  const rows = entries.map((e) => {
    const href = `/console/files${encodePath([...segs, e.name], e.type === 'collection')}`;
    return e.type === 'collection'
      ? [
          html`${FOLDER_ICON}<a href="${href}">${e.name}/</a>`,
          '–',
          shortTime(e.mtime.toISOString()),
          html`<a href="${href}?zip">Download as zip</a>`,
        ]
      : [
          // Thumbnails go here: the browse issue adds GET <path>?thumbnail=256 to the gateway; the
          // console will show it as <img> for image files. Not made here (no sharp in the console).
          html`${FILE_ICON}<a href="${href}" download>${e.name}</a>`,
          html`<span class="num">${formatSize(e.size)}</span>`,
          shortTime(e.mtime.toISOString()),
          html`<a href="${href}" download>Download</a>`,
        ];
  });
  return html`<p class="crumbs">${crumbs}</p>
    <section class="card">
      ${table(['Name', 'Size', 'Modified', ''], rows, segs.length ? 'This folder is empty.' : 'Your /files/ folder is empty: nothing has been uploaded yet.')}
      ${entries.length ? html`<p><a href="${here}?zip">Download this folder as a zip</a></p>` : ''}
      <p class="placeholder">Image previews (thumbnails) arrive with the snapshot browser.</p>
    </section>`;
}

async function sendFile(res: Response, area: FileArea, segs: string[], name: string, size: number): Promise<void> {
  setDownloadHeaders(res, name, contentTypeOf(name));
  res.setHeader('Content-Length', String(size));
  res.status(200);
  if (res.req.method === 'HEAD' || size === 0) return void res.end();
  await pipeline(area.openRead(segs), res);
}

/**
 * A folder as a zip, streamed: files are added one at a time (one open file, memory flat whatever
 * the folder's size), symlinks never followed (FileArea does not list them). A client that goes
 * away stops the walk.
 */
async function sendZip(res: Response, area: FileArea, segs: string[], name: string): Promise<void> {
  setDownloadHeaders(res, `${name}.zip`, 'application/zip');
  res.status(200);
  const zip = new ZipArchive({ zlib: { level: 6 } });
  const done = pipeline(zip, res);
  const appendOne = (source: string | Readable, data: { name: string; date: Date }) =>
    new Promise<void>((resolve, reject) => {
      const onError = (err: Error) => {
        zip.off('entry', onEntry);
        reject(err);
      };
      const onEntry = () => {
        zip.off('error', onError);
        resolve();
      };
      zip.once('entry', onEntry);
      zip.once('error', onError);
      zip.append(source, data);
    });
  const add = async (rel: string[]): Promise<void> => {
    for (const e of await area.list([...segs, ...rel])) {
      if (res.destroyed) return;
      const inZip = [...rel, e.name].join('/');
      if (e.type === 'collection') {
        await appendOne('', { name: `${inZip}/`, date: e.mtime });
        await add([...rel, e.name]);
      } else {
        await appendOne(area.openRead([...segs, ...rel, e.name]), { name: inZip, date: e.mtime });
      }
    }
  };
  try {
    await add([]);
    await zip.finalize();
  } catch (err) {
    zip.destroy(err as Error);
  }
  await done.catch(() => undefined);
}
