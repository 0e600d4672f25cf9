/**
 * Server-side HTML with escaping by default: every value put into an `html` template is escaped
 * unless it is itself Html (made by `html` or `raw`). Arrays are joined. Nothing a user controls
 * (file names, host names, labels, error reasons) can become markup.
 */
export class Html {
  constructor(readonly text: string) {}
  toString(): string {
    return this.text;
  }
}

type Value = Html | string | number | boolean | null | undefined | readonly Value[];

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function render(v: Value): string {
  if (v === null || v === undefined || v === false) return '';
  if (v instanceof Html) return v.text;
  if (Array.isArray(v)) return v.map(render).join('');
  return escapeHtml(String(v));
}

export function html(strings: TemplateStringsArray, ...values: Value[]): Html {
  let out = strings[0] ?? '';
  values.forEach((v, i) => {
    out += render(v) + (strings[i + 1] ?? '');
  });
  return new Html(out);
}

/** Markup made by this module's own code (e.g. an SVG chart); never pass user text here. */
export function raw(text: string): Html {
  return new Html(text);
}

export interface PageOptions {
  title: string;
  /** The navigation shown on top: the operator's or the user's, or none on sign-in pages. */
  nav: { href: string; label: string; current?: boolean }[];
  who?: string;
  /** The sign-out form, when signed in with a session. */
  signOut?: { action: string; csrf: string };
  flash?: { kind: 'ok' | 'error'; text: string } | null;
  body: Html;
}

/** The whole document around a page's body: head, stylesheet, navigation, a message, the content. */
export function page(o: PageOptions): string {
  return html`<!doctype html>
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>${o.title} · Kura</title>
        <link rel="stylesheet" href="/console/static/console.css" />
      </head>
      <body>
        <header class="top">
          <span class="brand">Kura</span>
          <nav>${o.nav.map((n) => html`<a href="${n.href}" ${n.current ? raw(' aria-current="page"') : ''}>${n.label}</a>`)}</nav>
          <span class="who"
            >${o.who ?? ''}${
              o.signOut
                ? html`<form method="post" action="${o.signOut.action}" class="inline">
                    <input type="hidden" name="_csrf" value="${o.signOut.csrf}" /><button class="link">Sign out</button>
                  </form>`
                : ''
            }</span
          >
        </header>
        <main>
          <h1>${o.title}</h1>
          ${o.flash ? html`<p class="flash ${o.flash.kind}" role="${o.flash.kind === 'error' ? 'alert' : 'status'}">${o.flash.text}</p>` : ''}
          ${o.body}
        </main>
      </body>
    </html> `.text;
}

/** A table with a header row, or the empty-state sentence when there are no rows. */
export function table(head: string[], rows: Value[][], empty: string, cls = ''): Html {
  if (rows.length === 0) return html`<p class="empty">${empty}</p>`;
  return html`<table class="${cls}">
    <thead>
      <tr>
        ${head.map((h) => html`<th>${h}</th>`)}
      </tr>
    </thead>
    <tbody>
      ${rows.map(
        (r) =>
          html`<tr>
            ${r.map((c) => html`<td>${c}</td>`)}
          </tr>`,
      )}
    </tbody>
  </table>`;
}

/** The hidden CSRF field every form carries. */
export function csrfField(token: string): Html {
  return html`<input type="hidden" name="_csrf" value="${token}" />`;
}

/** A time as people read it in a table: 2026-11-26 08:44 UTC. */
export function shortTime(iso: string | null | undefined): string {
  if (!iso) return '–';
  const t = new Date(iso);
  return Number.isNaN(t.getTime()) ? iso : t.toISOString().slice(0, 16).replace('T', ' ') + ' UTC';
}

export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}
