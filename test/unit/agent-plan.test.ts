import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { packSizeFor } from '../../agent/packer.js';
import { mergeRuns } from '../../agent/trees.js';
import { pickSnapshot } from '../../cli/agent-commands.js';
import type { SnapshotInfo } from '../../agent/repository.js';

const KiB = 1024;
const MiB = 1024 * KiB;

describe('pack size follows the measured upload rate', () => {
  it('uses small packs on slow links and large ones on fast links, within 512 KiB..64 MiB', () => {
    assert.equal(packSizeFor(100 * KiB), 512 * KiB);
    assert.equal(packSizeFor(512 * KiB), 2 * MiB);
    assert.equal(packSizeFor(2 * MiB), 8 * MiB);
    assert.equal(packSizeFor(10 * MiB), 16 * MiB);
    assert.equal(packSizeFor(50 * MiB), 32 * MiB);
    assert.equal(packSizeFor(500 * MiB), 32 * MiB);
    assert.equal(packSizeFor(2048 * MiB), 64 * MiB);
  });
});

describe('ranged downloads merge neighbouring blobs', () => {
  const loc = (offset: number, length: number) => ({
    loc: { id: `b${offset}`, pack: 'p', type: 'd' as const, offset, length, plainLength: length },
  });
  it('merges blobs closer than 256 KiB and splits far ones, in offset order', () => {
    const runs = mergeRuns([loc(2000, 100), loc(9, 1000), loc(10 * MiB, 10)]);
    assert.deepEqual(
      runs.map((r) => r.map((x) => x.loc.offset)),
      [[9, 2000], [10 * MiB]],
    );
  });
  it('caps one request at 16 MiB', () => {
    const runs = mergeRuns([loc(0, 10 * MiB), loc(10 * MiB, 10 * MiB)]);
    assert.equal(runs.length, 2);
  });
});

describe('choosing a snapshot to restore', () => {
  const snap = (id: string, time: string): SnapshotInfo => ({
    id,
    host: 'pc',
    time,
    type: 'incremental',
    encrypted: true,
    bytes: Buffer.alloc(0),
  });
  const all = [
    snap('aaa111', '2026-01-01T10:00:00.000Z'),
    snap('abb222', '2026-01-02T10:00:00.000Z'),
    snap('ccc333', '2026-01-03T10:00:00.000Z'),
  ];
  it('takes latest, a unique id prefix, or the last snapshot at or before a time', () => {
    assert.equal(pickSnapshot(all, 'latest').id, 'ccc333');
    assert.equal(pickSnapshot(all, 'abb').id, 'abb222');
    assert.equal(pickSnapshot(all, '2026-01-02T12:00:00Z').id, 'abb222');
  });
  it('refuses an ambiguous prefix or a time before every snapshot, in plain words', () => {
    assert.throws(() => pickSnapshot(all, 'a'), /matches 2 snapshots/);
    assert.throws(() => pickSnapshot(all, '2025-01-01'), /no snapshot matches/);
    assert.throws(() => pickSnapshot([], 'latest'), /no snapshots yet/);
  });
});
