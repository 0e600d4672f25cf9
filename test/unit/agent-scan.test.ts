import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmod, lstat, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { scan, type ScanEntry, type ScanOptions } from '../../agent/scan.js';
import { ScanThread } from '../../agent/scan-thread.js';
import { chooseMode, formatBytes, formatDuration, formatRate, Progress, type ProgressMode } from '../../agent/progress.js';

async function collect(root: string, opts: ScanOptions = {}): Promise<ScanEntry[]> {
  const out: ScanEntry[] = [];
  for await (const e of scan(root, opts)) out.push(e);
  return out;
}

const rels = (entries: ScanEntry[]): string[] => entries.map((e) => e.rel);

/** Makes files (string content) and folders (null) below root. */
async function makeTree(root: string, spec: Record<string, string | null>): Promise<void> {
  for (const [rel, content] of Object.entries(spec)) {
    const path = join(root, rel);
    await mkdir(content === null ? path : dirname(path), { recursive: true });
    if (content !== null) await writeFile(path, content);
  }
}

describe('scan', () => {
  let tmp: string;
  before(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'kura-scan-'));
  });
  after(async () => {
    await rm(tmp, { recursive: true, force: true });
  });
  const freshRoot = async (name: string): Promise<string> => {
    const root = join(tmp, name);
    await mkdir(root);
    return root;
  };

  it('walks depth first, a directory before its contents, names in UTF-8 byte order', async () => {
    const root = await freshRoot('order');
    await makeTree(root, {
      'b.txt': 'b',
      'a.txt': 'a',
      'a.b': 'x',
      Z: 'upper case sorts first',
      'a/y': 'y',
      'a/x/deep': 'd',
      'é.txt': 'two-byte name',
      '\u{1F600}': 'four-byte name (a surrogate pair in UTF-16)',
      '\uFF5E': 'three-byte name',
    });
    assert.deepEqual(rels(await collect(root)), [
      'Z',
      'a',
      'a/x',
      'a/x/deep',
      'a/y',
      'a.b',
      'a.txt',
      'b.txt',
      'é.txt',
      '\uFF5E',
      '\u{1F600}',
    ]);
  });

  it('records type, size, mode, inode and absolute path of each entry', async () => {
    const root = await freshRoot('fields');
    await makeTree(root, { 'f.txt': 'hello', d: null });
    await chmod(join(root, 'f.txt'), 0o640);
    await chmod(join(root, 'd'), 0o1750);
    const [d, f] = await collect(root);
    const st = await lstat(join(root, 'f.txt'), { bigint: true });
    assert.deepEqual(f, {
      path: join(root, 'f.txt'),
      rel: 'f.txt',
      type: 'file',
      size: 5,
      mode: 0o640,
      mtimeNs: st.mtimeNs,
      ino: Number(st.ino),
    });
    assert.equal(d!.type, 'dir');
    assert.equal(d!.size, 0);
    assert.equal(d!.mode, 0o1750);
  });

  it('keeps modification times to the nanosecond', async () => {
    const root = await freshRoot('mtime');
    await makeTree(root, { f: 'x' });
    execFileSync('touch', ['-h', '-d', '@1577934245.123456789', join(root, 'f')]);
    const [f] = await collect(root);
    assert.equal(f!.mtimeNs, 1577934245123456789n);
  });

  it('records symlinks with their targets and never follows them, dangling ones too', async () => {
    const root = await freshRoot('links');
    await makeTree(root, { 'dir/inner': 'i' });
    await symlink('dir', join(root, 'to-dir'));
    await symlink('../nowhere', join(root, 'dangling'));
    const entries = await collect(root);
    assert.deepEqual(rels(entries), ['dangling', 'dir', 'dir/inner', 'to-dir']);
    const byRel = new Map(entries.map((e) => [e.rel, e]));
    assert.equal(byRel.get('to-dir')!.type, 'symlink');
    assert.equal(byRel.get('to-dir')!.target, 'dir');
    assert.equal(byRel.get('to-dir')!.size, 3);
    assert.equal(byRel.get('dangling')!.target, '../nowhere');
  });

  it('leaves out FIFOs and sockets', async () => {
    const root = await freshRoot('special');
    await makeTree(root, { plain: 'p' });
    execFileSync('mkfifo', [join(root, 'fifo')]);
    const server: Server = createServer();
    await new Promise<void>((resolve) => server.listen(join(root, 'sock'), resolve));
    try {
      assert.deepEqual(rels(await collect(root)), ['plain']);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('excludes with gitignore-like patterns and does not enter excluded directories', async () => {
    const root = await freshRoot('exclude');
    await makeTree(root, {
      'node_modules/m/index.js': 'x',
      'src/node_modules/n.js': 'x',
      'src/main.ts': 'x',
      'x.tmp': 'x',
      'src/y.tmp': 'x',
      'keep.tmp': 'x',
      'cache/c': 'x',
      'src/cache/c': 'x',
      'other/cache': 'a file named cache stays: cache/ matches directories only',
      'build/out': 'x',
      'src/build/out': 'stays: /build is anchored at the root',
      'docs/a.md': 'x',
      'docs/deep/b.md': 'stays: * does not cross /',
      'logs/today/1.log': 'x',
    });
    const exclude = ['**/node_modules', '*.tmp', '!keep.tmp', 'cache/', '/build', 'docs/*.md', 'logs/**', '', '# a comment'];
    assert.deepEqual(rels(await collect(root, { exclude })), [
      'docs',
      'docs/deep',
      'docs/deep/b.md',
      'keep.tmp',
      'other',
      'other/cache',
      'src',
      'src/build',
      'src/build/out',
      'src/main.ts',
    ]);
  });

  it('reports a directory that vanishes before it is listed to onWarning and goes on', async () => {
    const root = await freshRoot('vanishing-dir');
    await makeTree(root, { 'a/1': 'x', 'b/2': 'x' });
    const warnings: [string, string | undefined][] = [];
    const seen: string[] = [];
    for await (const e of scan(root, { onWarning: (path, err) => warnings.push([path, (err as NodeJS.ErrnoException).code]) })) {
      seen.push(e.rel);
      if (e.rel === 'a') await rm(e.path, { recursive: true });
    }
    assert.deepEqual(seen, ['a', 'b', 'b/2']);
    assert.deepEqual(warnings, [[join(root, 'a'), 'ENOENT']]);
  });

  it('reports a file that vanishes between readdir and lstat to onWarning and goes on', async () => {
    const root = await freshRoot('vanishing-file');
    // Names are stat'ed in batches as the walk reaches them (32 at a time): f99 is in a later batch
    // than "a", so deleting it while "a" is being handled leaves its name listed but gone.
    const files = Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`f${String(i).padStart(2, '0')}`, 'x']));
    await makeTree(root, { 'a/inner': 'x', ...files });
    const warnings: string[] = [];
    const seen: string[] = [];
    for await (const e of scan(root, { onWarning: (path) => warnings.push(path) })) {
      seen.push(e.rel);
      if (e.rel === 'a') await rm(join(root, 'f99'));
    }
    assert.deepEqual(warnings, [join(root, 'f99')]);
    assert.equal(seen.length, 1 + 1 + 99);
  });

  it('throws when the root is missing or not a directory', async () => {
    const root = await freshRoot('root-errors');
    await makeTree(root, { file: 'x' });
    await assert.rejects(collect(join(root, 'missing')), { code: 'ENOENT' });
    await assert.rejects(collect(join(root, 'file')), { code: 'ENOTDIR' });
  });
});

describe('scan on a worker thread (ScanThread)', () => {
  let tmp: string;
  before(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'kura-scan-thread-'));
    const files = Object.fromEntries(Array.from({ length: 1200 }, (_, i) => [`d${i % 7}/f${i}.txt`, `file ${i}`]));
    await makeTree(tmp, { ...files, 'skip/me.tmp': 'x', 'node_modules/x/y.js': 'x', 'é/ñ.txt': 'unicode' });
    await symlink('d1/f1.txt', join(tmp, 'link'));
  });
  after(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  it('yields exactly what scan() yields, in the same order, folder after folder (three batches, exclusions, links, listings)', async () => {
    const opts = { exclude: ['*.tmp', 'node_modules'], listings: true };
    const thread = new ScanThread([tmp, join(tmp, 'd3')], opts);
    try {
      const rootListings: string[] = [];
      const expected = await collect(tmp, { ...opts, onRootListing: (d) => rootListings.push(d) });
      assert.ok(expected.length > 1100);
      assert.ok(expected.filter((e) => e.type === 'dir').every((e) => typeof e.listing === 'string'));
      assert.deepEqual(await onThread(thread, tmp, { onRootListing: (d) => rootListings.push(d) }), expected);
      assert.equal(rootListings.length, 2);
      assert.equal(rootListings[0], rootListings[1], "the root's listing reaches the reader too");
      assert.deepEqual(await onThread(thread, join(tmp, 'd3')), await collect(join(tmp, 'd3'), opts), 'the second folder');
    } finally {
      await thread.close();
    }
  });

  it('throws as scan() does when a root is missing or not a directory, and goes on with the next one', async () => {
    const thread = new ScanThread([join(tmp, 'missing'), join(tmp, 'd1', 'f1.txt'), join(tmp, 'd2')]);
    try {
      await assert.rejects(onThread(thread, join(tmp, 'missing')), { code: 'ENOENT' });
      await assert.rejects(onThread(thread, join(tmp, 'd1', 'f1.txt')), { code: 'ENOTDIR' });
      assert.equal((await onThread(thread, join(tmp, 'd2'))).length, (await collect(join(tmp, 'd2'))).length);
    } finally {
      await thread.close();
    }
  });

  it('refuses folders out of order, stops its worker when a walk is abandoned half way, and then refuses to walk again', async () => {
    const thread = new ScanThread([tmp, join(tmp, 'd2')]);
    await assert.rejects(onThread(thread, join(tmp, 'd2')), /in that order/);
    for await (const e of thread.scan(tmp)) if (e.rel.startsWith('d2')) break;
    await assert.rejects(onThread(thread, join(tmp, 'd2')), /not after close/);
  });
});

async function onThread(thread: ScanThread, root: string, opts: ScanOptions = {}): Promise<ScanEntry[]> {
  const seen: ScanEntry[] = [];
  for await (const e of thread.scan(root, opts)) seen.push(e);
  return seen;
}

/** An output that records what is written, with a settable TTY flag. */
function recorder(isTTY: boolean): { out: { write(s: string): boolean; isTTY: boolean; columns: number }; text: () => string } {
  const parts: string[] = [];
  return { out: { write: (s: string) => parts.push(s) > 0, isTTY, columns: 100 }, text: () => parts.join('') };
}

function progressWithClock(mode: ProgressMode, isTTY = mode === 'tty') {
  let now = 1000;
  const rec = recorder(isTTY);
  const progress = new Progress({ operation: 'backup', out: rec.out, mode, now: () => now });
  return { progress, text: rec.text, advance: (ms: number) => (now += ms) };
}

// These belong in test/unit/agent-progress.test.ts; they live here while that file is not ours to add.
describe('progress reporter', () => {
  it('formats sizes, rates and durations in SI units', () => {
    assert.equal(formatBytes(0), '0 B');
    assert.equal(formatBytes(999), '999 B');
    assert.equal(formatBytes(1000), '1.00 kB');
    assert.equal(formatBytes(1_234_567), '1.23 MB');
    assert.equal(formatBytes(45_600_000), '45.6 MB');
    assert.equal(formatBytes(999_999_999), '1.00 GB');
    assert.equal(formatBytes(1.7e12), '1.70 TB');
    assert.equal(formatRate(85_300_000), '85.3 MB/s');
    assert.equal(formatDuration(0), '0:00');
    assert.equal(formatDuration(65), '1:05');
    assert.equal(formatDuration(3723), '1:02:03');
  });

  it('computes the rate and ETA from the injected clock, and smooths the rate', () => {
    const { progress, advance } = progressWithClock('quiet');
    progress.setTotals(10, 100e6);
    advance(1000);
    progress.add(1, 10e6);
    let s = progress.state();
    assert.equal(s.bytesPerSecond, 10e6);
    assert.equal(s.etaSeconds, 9);
    advance(1000);
    progress.add(1, 40e6); // a burst at 40 MB/s moves the smoothed rate only part of the way
    s = progress.state();
    assert.ok(s.bytesPerSecond > 15e6 && s.bytesPerSecond < 25e6, String(s.bytesPerSecond));
    assert.ok(Math.abs(s.etaSeconds! - 50e6 / s.bytesPerSecond) < 1e-9);
  });

  it('leaves the seconds before restartRate (a restore planning) out of the rate', () => {
    const { progress, advance } = progressWithClock('quiet');
    progress.setTotals(10, 100e6);
    for (let i = 0; i < 8; i++) {
      advance(250); // two seconds of planning: ticks, no bytes
      progress.tick();
    }
    progress.restartRate();
    advance(1000);
    progress.add(1, 50e6);
    assert.equal(progress.state().bytesPerSecond, 50e6);
    assert.equal(progress.state().etaSeconds, 1);
  });

  it('ends its line with the average rate since the clock started', () => {
    const { progress, text, advance } = progressWithClock('plain');
    advance(3000); // planning
    progress.restartRate();
    advance(100);
    progress.add(1, 30e6);
    advance(300);
    progress.add(1, 10e6);
    progress.stop();
    assert.match(text(), /100 MB\/s/, text()); // 40 MB in 0.4 s
  });

  it('redraws one TTY line at most 4 times a second, with \\r and the totals', () => {
    const { progress, text, advance } = progressWithClock('tty');
    progress.setTotals(1500, 4.56e9);
    for (let i = 0; i < 40; i++) {
      advance(50);
      progress.add(3, 4.265e6); // 85.3 MB/s
    }
    const draws = text().split('\r').filter(Boolean);
    assert.ok(draws.length >= 8 && draws.length <= 10, `${draws.length} redraws in 2 s`);
    assert.equal(draws.at(-1), 'backup  120/1,500 files  171 MB / 4.56 GB  3%  85.3 MB/s  ETA 0:51\x1b[K');
    assert.ok(!text().includes('\n'));
    progress.stop();
    assert.ok(text().endsWith('\n'));
  });

  it('writes a plain line every 5 seconds when not on a TTY, and nothing when quiet', () => {
    const plain = progressWithClock('plain');
    const quiet = progressWithClock('quiet');
    for (const { progress, advance } of [plain, quiet]) {
      for (let i = 0; i < 120; i++) {
        advance(100);
        progress.add(1, 1e6);
      }
      progress.summary([{ key: 'files', label: 'Files', value: 120 }]);
    }
    const lines = plain.text().trimEnd().split('\n');
    assert.deepEqual(lines.slice(0, 2), ['[0:05] backup  50 files  50.0 MB  10.0 MB/s', '[0:10] backup  100 files  100 MB  10.0 MB/s']);
    assert.equal(quiet.text(), '');
  });

  it('emits NDJSON progress and summary events in json mode', () => {
    const { progress, text, advance } = progressWithClock('json');
    progress.setTotals(2, 3e6);
    advance(1000);
    progress.add(1, 1e6);
    progress.note('skipped /x: EACCES');
    progress.summary([{ key: 'bytesAdded', label: 'Added', value: 3e6, unit: 'bytes' }]);
    const events = text()
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.deepEqual(
      events.map((e) => e.event),
      ['progress', 'note', 'summary'],
    );
    assert.deepEqual(events[0], {
      event: 'progress',
      operation: 'backup',
      elapsedMs: 1000,
      filesDone: 1,
      filesTotal: 2,
      bytesDone: 1e6,
      bytesTotal: 3e6,
      bytesPerSecond: 1e6,
      etaSeconds: 2,
    });
    assert.deepEqual(events[2], { event: 'summary', operation: 'backup', elapsedMs: 1000, bytesAdded: 3e6 });
  });

  it('prints a readable summary block', () => {
    const { progress, text, advance } = progressWithClock('plain');
    advance(65_000);
    progress.summary([
      { key: 'files', label: 'Files', value: 12345 },
      { key: 'bytesAdded', label: 'Added to the gateway', value: 1.5e9, unit: 'bytes' },
      { key: 'snapshot', label: 'Snapshot', value: '3f2a9c' },
    ]);
    assert.equal(
      text(),
      [
        'backup finished in 1:05',
        '  Files                 12,345',
        '  Added to the gateway  1.50 GB',
        '  Snapshot              3f2a9c',
        '',
      ].join('\n'),
    );
  });

  it('chooses the mode from --quiet, --json and the terminal', () => {
    assert.equal(chooseMode({ quiet: true, json: true, isTTY: true }), 'quiet');
    assert.equal(chooseMode({ json: true, isTTY: true }), 'json');
    assert.equal(chooseMode({ isTTY: true }), 'tty');
    assert.equal(chooseMode({}), 'plain');
  });
});
