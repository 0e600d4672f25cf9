import { isPreviewable } from '../browse/thumbnails.js';
import { formatSize } from '../gateway/policy/contracts.js';
import { encodePath } from '../gateway/storage/paths.js';
import { html, raw, shortTime, table, type Html } from './html.js';

/** The size previews are asked for (`?thumbnail=`), shown at up to 96 CSS pixels: sharp on a HiDPI screen too. */
export const PREVIEW_PIXELS = 128;

const FOLDER_ICON = raw(
  '<svg class="icon" viewBox="0 0 16 16" aria-hidden="true"><path d="M1 3.5h5l1.5 1.5H15v8.5H1z" fill="#e0b252" stroke="#b7862b"/></svg>',
);
const FILE_ICON = raw(
  '<svg class="icon" viewBox="0 0 16 16" aria-hidden="true"><path d="M3 1h7l3 3v11H3z" fill="#fff" stroke="#7b8794"/><path d="M10 1v3h3" fill="none" stroke="#7b8794"/></svg>',
);

/** One member of a folder shown by the console: of /files/ or of a snapshot. */
export interface Listed {
  name: string;
  type: 'file' | 'collection';
  size: number;
  mtime: Date;
}

/** Folders first, then files, each by name. */
export function sortListed<T extends Listed>(entries: T[]): T[] {
  return [...entries].sort((a, b) => (a.type === b.type ? a.name.localeCompare(b.name) : a.type === 'collection' ? -1 : 1));
}

/** The path as links: `lead` (links above base), `root` naming the folder at base, then one link per segment. */
export function crumbs(base: string, root: Html | string, segs: string[], lead: Html | string = ''): Html {
  const parts = [html`${lead}<a href="${base}/">${root}</a>`];
  segs.forEach((s, i) => parts.push(html` / <a href="${base}${encodePath(segs.slice(0, i + 1), true)}">${s}</a>`));
  return html`<p class="crumbs">${parts}</p>`;
}

/**
 * A folder's members as a table: folders link to their page and to a zip, files download as
 * attachments, and an image shows its preview (`<href>?thumbnail=128`, an <img> of this origin, so
 * no script and the CSP's img-src 'self' suffice).
 */
export function folderTable(base: string, segs: string[], entries: Listed[], empty: string): Html {
  const rows = sortListed(entries).map((e) => {
    const href = `${base}${encodePath([...segs, e.name], e.type === 'collection')}`;
    if (e.type === 'collection')
      return [
        html`${FOLDER_ICON}<a href="${href}">${e.name}/</a>`,
        '–',
        shortTime(e.mtime.toISOString()),
        html`<a href="${href}?zip">Download as zip</a>`,
      ];
    const name = isPreviewable(e.name)
      ? html`<span class="entry"
          ><a class="thumb" href="${href}" download tabindex="-1"
            ><img src="${href}?thumbnail=${PREVIEW_PIXELS}" alt="Preview of ${e.name}" loading="lazy" /></a
          ><a href="${href}" download>${e.name}</a></span
        >`
      : html`${FILE_ICON}<a href="${href}" download>${e.name}</a>`;
    return [
      name,
      html`<span class="num">${formatSize(e.size)}</span>`,
      shortTime(e.mtime.toISOString()),
      html`<a href="${href}" download>Download</a>`,
    ];
  });
  return table(['Name', 'Size', 'Modified', ''], rows, empty);
}
