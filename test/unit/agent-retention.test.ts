import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { planPacks } from '../../agent/prune.js';
import type { BlobLocation, SnapshotInfo } from '../../agent/repository.js';
import { planByHost, planForget } from '../../agent/retention.js';

/** A snapshot taken at local time y-m-d h:00 (retention periods are the PC's local time). */
function snap(id: string, y: number, m: number, d: number, h = 12, host = 'pc1'): SnapshotInfo {
  return { id, host, time: new Date(y, m - 1, d, h).toISOString(), type: 'incremental', encrypted: true, bytes: Buffer.alloc(0) };
}

const ids = (list: readonly SnapshotInfo[]) => list.map((s) => s.id);

describe('agent: retention policies (forget)', () => {
  // Every 6 hours from Monday 2026-11-02 to Sunday 2026-11-29: 4 a day, 28 days.
  const history: SnapshotInfo[] = [];
  for (let day = 2; day <= 29; day++) for (const h of [0, 6, 12, 18]) history.push(snap(`d${day}h${h}`, 2026, 11, day, h));

  it('keep-last keeps the n newest and forgets the rest, newest first in both lists', () => {
    const plan = planForget(history, { last: 3 });
    assert.deepEqual(ids(plan.keep.map((k) => k.snapshot)), ['d29h18', 'd29h12', 'd29h6']);
    assert.equal(plan.forget.length, history.length - 3);
    assert.equal(plan.forget[0]?.id, 'd29h0');
    assert.deepEqual(plan.keep[0]?.reasons, ['last']);
  });

  it('keep-daily keeps the newest of each of the last n days; the rules add up, each kept snapshot says why', () => {
    const plan = planForget(history, { last: 2, daily: 3 });
    assert.deepEqual(ids(plan.keep.map((k) => k.snapshot)), ['d29h18', 'd29h12', 'd28h18', 'd27h18']);
    assert.deepEqual(plan.keep[0]?.reasons, ['last', 'daily']);
    assert.deepEqual(plan.keep[1]?.reasons, ['last']);
    assert.deepEqual(plan.keep[2]?.reasons, ['daily']);
  });

  it('keep-weekly uses ISO weeks (Monday to Sunday) and keep-monthly calendar months', () => {
    const weekly = planForget(history, { weekly: 10 });
    // Weeks of Nov 2026: 2-8, 9-15, 16-22, 23-29: the Sunday 18:00 of each.
    assert.deepEqual(ids(weekly.keep.map((k) => k.snapshot)), ['d29h18', 'd22h18', 'd15h18', 'd8h18']);
    const monthly = planForget([...history, snap('oct', 2026, 10, 31, 23), snap('sep', 2026, 9, 1)], { monthly: 2 });
    assert.deepEqual(ids(monthly.keep.map((k) => k.snapshot)), ['d29h18', 'oct']);
    assert.deepEqual(ids(monthly.forget).slice(-1), ['sep']);
  });

  it('weeks across a new year follow ISO 8601: Thu 2026-12-31 and Fri 2027-01-01 are in the same week', () => {
    const plan = planForget([snap('wed', 2026, 12, 30), snap('thu', 2026, 12, 31), snap('fri', 2027, 1, 1), snap('mon', 2027, 1, 4)], {
      weekly: 5,
    });
    assert.deepEqual(ids(plan.keep.map((k) => k.snapshot)), ['mon', 'fri']);
  });

  it('hourly periods and yearly periods', () => {
    const plan = planForget([snap('a', 2025, 6, 1, 10), snap('b', 2026, 1, 1, 9), snap('c', 2026, 1, 1, 10), snap('d', 2026, 1, 1, 10)], {
      hourly: 2,
      yearly: 2,
    });
    assert.deepEqual(ids(plan.keep.map((k) => k.snapshot)).sort(), ['a', 'b', 'd']);
  });

  it('refuses an empty policy instead of forgetting everything', () => {
    assert.throws(() => planForget(history, {}), /at least one --keep-\* rule/);
    assert.throws(() => planForget(history, { last: 0, daily: 0 }), /at least one --keep-\* rule/);
  });

  it("weighs each host's snapshots on their own", () => {
    const plans = planByHost([snap('a1', 2026, 1, 1, 1, 'a'), snap('a2', 2026, 1, 1, 2, 'a'), snap('b1', 2026, 1, 1, 3, 'b')], { last: 1 });
    assert.deepEqual(ids(plans.get('a')!.keep.map((k) => k.snapshot)), ['a2']);
    assert.deepEqual(ids(plans.get('b')!.keep.map((k) => k.snapshot)), ['b1']);
    assert.deepEqual(ids(plans.get('a')!.forget), ['a1']);
  });
});

describe('agent: which packs prune removes and repacks', () => {
  const blob = (id: string, pack: string, length: number): BlobLocation => ({
    id,
    pack,
    type: 'd',
    offset: 9,
    length,
    plainLength: length,
  });
  const byPack = new Map<string, BlobLocation[]>([
    ['all-used', [blob('a', 'all-used', 100), blob('b', 'all-used', 100)]],
    ['none-used', [blob('c', 'none-used', 100)]],
    ['mostly-unused', [blob('d', 'mostly-unused', 10), blob('e', 'mostly-unused', 90)]],
    ['little-unused', [blob('f', 'little-unused', 90), blob('g', 'little-unused', 10)]],
  ]);
  const used = new Set(['a', 'b', 'd', 'f']);

  it('removes packs nothing uses, repacks those at least the threshold unused, keeps the rest', () => {
    assert.deepEqual(planPacks(byPack, used, 0.5), { remove: ['none-used'], repack: ['mostly-unused'] });
    assert.deepEqual(planPacks(byPack, used, 0.1), { remove: ['none-used'], repack: ['mostly-unused', 'little-unused'] });
    assert.deepEqual(planPacks(byPack, used, 1), { remove: ['none-used'], repack: [] });
  });
});
