import { formatSize } from '../gateway/policy/contracts.js';
import type { UsageSample } from '../gateway/policy/usage-history.js';
import { escapeHtml, html, plural, raw, type Html } from './html.js';

const W = 720;
const H = 220;
const PAD = { left: 70, right: 16, top: 14, bottom: 30 };

/**
 * Usage over time as an inline SVG (no script, no external image): one point per daily sample, the
 * quota as a dashed line when it is within sight. Up to the last 90 days.
 */
export function usageChart(samples: UsageSample[], quotaBytes: number | null): Html {
  const shown = samples.slice(-90);
  if (shown.length === 0) return html`<p class="empty">No usage samples yet: the gateway records one per day.</p>`;
  const top = niceMax(
    Math.max(
      ...shown.map((s) => s.bytes),
      quotaBytes !== null && quotaBytes <= 2 * Math.max(1, ...shown.map((s) => s.bytes)) ? quotaBytes : 0,
      1,
    ),
  );
  const x = (i: number) =>
    PAD.left + (shown.length === 1 ? (W - PAD.left - PAD.right) / 2 : (i * (W - PAD.left - PAD.right)) / (shown.length - 1));
  const y = (b: number) => H - PAD.bottom - (b / top) * (H - PAD.top - PAD.bottom);
  const parts: string[] = [];
  for (let k = 0; k <= 4; k++) {
    const v = (top * k) / 4;
    parts.push(`<line x1="${PAD.left}" x2="${W - PAD.right}" y1="${y(v)}" y2="${y(v)}" stroke="#e4e7eb"/>`);
    parts.push(
      `<text x="${PAD.left - 8}" y="${y(v) + 4}" text-anchor="end" font-size="11" fill="#616e7c">${escapeHtml(formatSize(v))}</text>`,
    );
  }
  const pts = shown.map((s, i) => `${x(i).toFixed(1)},${y(s.bytes).toFixed(1)}`);
  if (shown.length > 1) {
    parts.push(`<polygon points="${x(0)},${y(0)} ${pts.join(' ')} ${x(shown.length - 1)},${y(0)}" fill="#2f6f4f" fill-opacity="0.12"/>`);
    parts.push(`<polyline points="${pts.join(' ')}" fill="none" stroke="#2f6f4f" stroke-width="2"/>`);
  }
  shown.forEach((s, i) => {
    parts.push(
      `<circle cx="${x(i)}" cy="${y(s.bytes)}" r="3.5" fill="#2f6f4f"><title>${s.day}: ${escapeHtml(formatSize(s.bytes))}</title></circle>`,
    );
  });
  if (quotaBytes !== null && quotaBytes <= top) {
    parts.push(
      `<line x1="${PAD.left}" x2="${W - PAD.right}" y1="${y(quotaBytes)}" y2="${y(quotaBytes)}" stroke="#b42318" stroke-dasharray="6 4"/>`,
    );
    parts.push(
      `<text x="${W - PAD.right}" y="${y(quotaBytes) - 5}" text-anchor="end" font-size="11" fill="#b42318">quota ${escapeHtml(formatSize(quotaBytes))}</text>`,
    );
  }
  const first = shown[0] as UsageSample;
  const last = shown[shown.length - 1] as UsageSample;
  parts.push(
    `<text x="${x(0)}" y="${H - 8}" text-anchor="${shown.length === 1 ? 'middle' : 'start'}" font-size="11" fill="#616e7c">${first.day}</text>`,
  );
  if (shown.length > 1)
    parts.push(`<text x="${x(shown.length - 1)}" y="${H - 8}" text-anchor="end" font-size="11" fill="#616e7c">${last.day}</text>`);
  const label = `Usage over time: ${plural(shown.length, 'daily sample')} from ${first.day} to ${last.day}, latest ${formatSize(last.bytes)}`;
  return raw(
    `<svg class="chart" role="img" aria-label="${escapeHtml(label)}" viewBox="0 0 ${W} ${H}" xmlns="http://www.w3.org/2000/svg">${parts.join('')}</svg>`,
  );
}

/** A round upper bound for the axis, at least max: 1, 2, 2.5 or 5 times a power of ten of the best binary unit. */
function niceMax(max: number): number {
  const unit = 1024 ** Math.max(0, Math.floor(Math.log(max) / Math.log(1024)));
  const v = max / unit;
  const exp = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * exp >= v) return m * exp * unit;
  return 10 * exp * unit;
}
