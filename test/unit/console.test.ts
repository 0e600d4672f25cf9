import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { html, raw } from '../../admin-ui/html.js';
import { attachmentHeader } from '../../admin-ui/download.js';
import { usageChart } from '../../admin-ui/chart.js';
import { contractChangeFrom } from '../../gateway/policy/contracts.js';
import { ConsoleSessions } from '../../gateway/policy/console-sessions.js';
import { Operators, OPERATOR_NAME } from '../../gateway/policy/operators.js';
import { UsageHistory } from '../../gateway/policy/usage-history.js';
import { MetaStore } from '../../gateway/storage/meta-store.js';
import { Certificates } from '../../gateway/policy/certs.js';
import { Users } from '../../gateway/policy/users.js';

describe('console html', () => {
  it('escapes every value put into a template, but not nested templates', () => {
    const name = '<img src=x onerror=alert(1)>"\'&';
    const out = html`<td title="${name}">${name}${html`<b>${name}</b>`}${[name, 1]}</td>`.text;
    assert.equal(out.includes('<img'), false);
    assert.match(out, /^<td title="&#60;img src=x onerror=alert\(1\)&#62;&#34;&#39;&#38;">/);
    assert.match(out, /<b>&#60;img/);
    assert.equal(html`${raw('<svg/>')}`.text, '<svg/>');
    assert.equal(html`${null}${undefined}${false}`.text, '');
  });

  it('names downloads as attachments with an ASCII fallback and the UTF-8 name', () => {
    assert.equal(attachmentHeader('report.txt'), `attachment; filename="report.txt"; filename*=UTF-8''report.txt`);
    assert.equal(attachmentHeader('日記 "1".txt'), `attachment; filename="__ _1_.txt"; filename*=UTF-8''%E6%97%A5%E8%A8%98%20%221%22.txt`);
  });

  it('draws an empty state without samples, and escapes nothing it did not make', () => {
    assert.match(usageChart([], null).text, /No usage samples yet/);
    const svg = usageChart(
      [
        { day: '2026-11-01', bytes: 1000 },
        { day: '2026-11-02', bytes: 3000 },
      ],
      4000,
    ).text;
    assert.match(
      svg,
      /^<svg class="chart" role="img" aria-label="Usage over time: 2 daily samples from 2026-11-01 to 2026-11-02, latest 2.9 KiB"/,
    );
    assert.match(svg, /quota 3.9 KiB/);
    assert.match(svg, /<polyline /);
  });
});

describe('contract form fields', () => {
  const label = (f: string) => `[${f}]`;

  it('leaves empty fields unchanged and reads sizes, dates, statuses and "none"', () => {
    assert.deepEqual(contractChangeFrom({ plan: ' ', quota: '' }, label), {
      plan: undefined,
      quotaBytes: undefined,
      maxSnapshots: undefined,
      validFrom: undefined,
      validUntil: undefined,
      status: undefined,
      sessionsPerDay: undefined,
    });
    const c = contractChangeFrom(
      { plan: 'home', quota: '1.5GiB', maxSnapshots: '7', until: 'none', status: 'suspended', sessionsPerDay: 'none', from: '2026-01-31' },
      label,
    );
    assert.deepEqual(c, {
      plan: 'home',
      quotaBytes: 1.5 * 1024 ** 3,
      maxSnapshots: 7,
      validFrom: '2026-01-31T00:00:00.000Z',
      validUntil: null,
      status: 'suspended',
      sessionsPerDay: null,
    });
  });

  it('refuses what is not a whole number, a size, a date or a status, naming the field as the caller calls it', () => {
    assert.throws(() => contractChangeFrom({ maxSnapshots: '-1' }, label), /\[maxSnapshots\] must be a whole number/);
    assert.throws(() => contractChangeFrom({ sessionsPerDay: '1e3' }, label), /\[sessionsPerDay\] must be a whole number/);
    assert.throws(() => contractChangeFrom({ maxSnapshots: '99999999999999999999' }, label), /must be a whole number/);
    assert.throws(() => contractChangeFrom({ quota: 'lots' }, label), /not a size: lots/);
    assert.throws(() => contractChangeFrom({ until: 'someday' }, label), /not a date: someday/);
    assert.throws(() => contractChangeFrom({ status: 'paid' }, label), /\[status\] must be one of active, suspended, cancelled/);
  });
});

describe('console sessions, operator password and usage history', () => {
  let dir: string;
  let meta: MetaStore;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kura-console-unit-'));
    meta = await MetaStore.openSqlite(join(dir, 'meta.sqlite'));
  });
  after(async () => {
    await meta.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('finds a live session by its token only, forgets an ended or expired one, and ignores malformed tokens', async () => {
    const sessions = new ConsoleSessions(meta);
    const { token, session } = await sessions.start('user', 'ann');
    assert.equal((await sessions.find(token))?.user, 'ann');
    assert.notEqual(session.csrf, token);
    assert.equal(await sessions.find(token.slice(0, -1) + (token.endsWith('A') ? 'B' : 'A')), undefined);
    assert.equal(await sessions.find('../../etc'), undefined);
    assert.equal(await sessions.find(token, new Date(Date.now() + 13 * 3_600_000)), undefined, 'expired after 12 hours');
    assert.equal(await sessions.find(token), undefined, 'and removed');
    const other = await sessions.start('operator', null);
    await sessions.end(other.token);
    assert.equal(await sessions.find(other.token), undefined);
  });

  it('creates the operator password once, verifies it for the operator name only, and replaces it', async () => {
    const ops = new Operators(meta);
    const first = await ops.ensurePassword();
    assert.match(first ?? '', /^[A-Za-z0-9]{24}$/);
    assert.equal(await ops.ensurePassword(), null);
    assert.equal(await ops.verify(OPERATOR_NAME, first as string), true);
    assert.equal(await ops.verify('ann', first as string), false);
    assert.equal(await ops.verify(OPERATOR_NAME, 'wrong'), false);
    const next = await ops.resetPassword();
    assert.equal(await ops.verify(OPERATOR_NAME, first as string), false);
    assert.equal(await ops.verify(OPERATOR_NAME, next), true);
  });

  it('revokes a certificate only when the form names it: an empty or tiny prefix is refused, not matched', async () => {
    const users = new Users(meta);
    const certs = new Certificates(meta, users, join(dir, 'ca'));
    await certs.initCa();
    await users.add('solo');
    const only = await certs.issue('solo');
    for (const id of ['', '  ', '4', 'zz', ':::']) {
      await assert.rejects(certs.revoke(id), /at least 4 hex digits/);
    }
    assert.equal((await certs.list('solo'))[0]?.revokedAt, null);
    const revoked = await certs.revoke(only.serial.slice(0, 8));
    assert.equal(revoked.fingerprint256, only.fingerprint256);
    assert.notEqual(revoked.revokedAt, null);
  });

  it('keeps one usage sample per day, the latest, in day order', async () => {
    const history = new UsageHistory(meta);
    await history.record('ann', 10, new Date('2026-11-02T10:00:00Z'));
    await history.record('ann', 5, new Date('2026-11-01T23:00:00Z'));
    await history.record('ann', 30, new Date('2026-11-02T20:00:00Z'));
    assert.deepEqual(await history.list('ann'), [
      { day: '2026-11-01', bytes: 5 },
      { day: '2026-11-02', bytes: 30 },
    ]);
    assert.deepEqual(await history.list('bob'), []);
  });
});
