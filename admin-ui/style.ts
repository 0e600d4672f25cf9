/** The console's one stylesheet, served from /console/static/console.css (no inline styles: the CSP forbids them). */
export const CONSOLE_CSS = `
:root { --ink: #1f2933; --muted: #616e7c; --line: #d9e2ec; --bg: #f5f7fa; --card: #fff; --accent: #2f6f4f;
  --warn: #b7791f; --bad: #b42318; --ok: #1e7b45; font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--ink); font-size: 15px; line-height: 1.45; }
header.top { display: flex; align-items: center; gap: 24px; padding: 10px 28px; background: #23352c; color: #fff; }
.brand { font-weight: 700; font-size: 18px; letter-spacing: .02em; }
header nav { display: flex; gap: 4px; flex: 1; flex-wrap: wrap; }
header nav a { color: #dfe9e3; text-decoration: none; padding: 6px 10px; border-radius: 6px; }
header nav a:hover, header nav a[aria-current] { background: rgba(255,255,255,.14); color: #fff; }
.who { display: flex; gap: 12px; align-items: center; color: #dfe9e3; font-size: 14px; }
main { max-width: 1120px; margin: 0 auto; padding: 20px 28px 60px; }
h1 { font-size: 24px; margin: 8px 0 18px; }
h2 { font-size: 17px; margin: 0 0 12px; }
section.card { background: var(--card); border: 1px solid var(--line); border-radius: 10px; padding: 18px 20px; margin: 0 0 18px; }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(320px, 1fr)); gap: 18px; }
.grid { margin: 0 0 18px; }
section.card > :first-child { margin-top: 0; }
section.card > :last-child { margin-bottom: 0; }
.grid > section.card { margin: 0; }
table + form, table + p, .empty + form { margin-top: 14px; }
.entry { display: inline-flex; align-items: center; gap: 12px; }
a.thumb { display: inline-flex; align-items: center; justify-content: center; width: 96px; height: 72px; background: #f0f4f8;
  border: 1px solid var(--line); border-radius: 6px; overflow: hidden; }
a.thumb img { display: block; max-width: 96px; max-height: 72px; }
svg.icon { width: 16px; height: 16px; vertical-align: -3px; margin-right: 6px; }
table { width: 100%; border-collapse: collapse; font-size: 14px; }
th, td { text-align: left; padding: 7px 10px; border-bottom: 1px solid var(--line); vertical-align: middle; }
th { color: var(--muted); font-weight: 600; font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tbody tr:hover { background: #f8fafc; }
code, .mono { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; font-size: 13px; }
pre { background: #f0f4f8; border: 1px solid var(--line); border-radius: 6px; padding: 10px 12px; overflow-x: auto; font-size: 13px; }
.empty { color: var(--muted); font-style: italic; margin: 6px 0; }
.flash { padding: 10px 14px; border-radius: 8px; margin: 0 0 18px; border: 1px solid; }
.flash.ok { background: #e8f5ee; border-color: #a3d9b8; color: var(--ok); }
.flash.error { background: #fdecea; border-color: #f5b5ae; color: var(--bad); }
.badge { display: inline-block; padding: 1px 8px; border-radius: 999px; font-size: 12px; font-weight: 600; background: #e4e7eb; color: var(--ink); }
.badge.succeeded, .badge.valid, .badge.active, .badge.enabled { background: #def7e8; color: var(--ok); }
.badge.failed, .badge.interrupted, .badge.revoked, .badge.expired, .badge.disabled, .badge.cancelled { background: #fde4e1; color: var(--bad); }
.badge.running, .badge.suspended, .badge.warn { background: #fdf3d7; color: var(--warn); }
form.stack { display: grid; grid-template-columns: 180px minmax(0, 360px); gap: 10px 14px; align-items: center; }
form.stack .hint { grid-column: 2; color: var(--muted); font-size: 13px; margin-top: -6px; }
form.stack .actions { grid-column: 2; }
form.row { display: flex; gap: 10px; align-items: center; flex-wrap: wrap; }
form.inline { display: inline; margin: 0; }
label { font-weight: 600; font-size: 14px; }
input[type=text], input[type=password], input[type=number], select { font: inherit; padding: 6px 9px; border: 1px solid #bcccdc; border-radius: 6px; width: 100%; background: #fff; }
form.row input[type=text], form.row select { width: auto; min-width: 180px; }
button { font: inherit; padding: 6px 14px; border-radius: 6px; border: 1px solid var(--accent); background: var(--accent); color: #fff; cursor: pointer; }
button.secondary { background: #fff; color: var(--accent); }
button.danger { background: #fff; color: var(--bad); border-color: #e5a39c; }
button.link { background: none; border: none; color: #dfe9e3; padding: 0; text-decoration: underline; }
a { color: #1d5e8c; }
meter { width: 160px; height: 12px; vertical-align: middle; }
.figure { font-size: 26px; font-weight: 700; }
.muted { color: var(--muted); }
.small { font-size: 13px; }
.nowrap { white-space: nowrap; }
.signin { max-width: 460px; margin: 40px auto; }
.crumbs { margin: -8px 0 14px; color: var(--muted); }
.crumbs a { text-decoration: none; }
svg.chart { width: 100%; height: auto; max-width: 760px; display: block; }
dl.facts { display: grid; grid-template-columns: 170px 1fr; gap: 6px 14px; margin: 0; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; }
.filters a { margin-right: 10px; }
.filters a[aria-current] { font-weight: 700; color: var(--ink); text-decoration: none; }
`;
