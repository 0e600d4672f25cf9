import {
  chmodSync,
  closeSync,
  constants,
  fchmodSync,
  futimesSync,
  mkdirSync,
  openSync,
  renameSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  utimesSync,
  writeSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import { BlobCodec } from '../format/index.js';
import { timeArg } from './file-times.js';
import { joinParts, splitParts } from './decode-pool.js';
import { collectYoung } from './young-gc.js';
import type { DecodeJob, DecodeWorkerData, FileTable, FinishJob, JobFailure, JobReply, OpenJob, PoolJob, SetupJob } from './decode-pool.js';

/**
 * A worker of the decode pool: opens, decompresses and verifies the blobs of one ranged GET and writes
 * their plaintext straight into the restored files, so neither the plaintext nor the file system calls
 * go back to the main thread. Synchronous calls are the point here: a file costs a few syscalls on
 * this thread instead of a thread-pool round trip per call on the main one.
 */
const { codecSpec, slab, cellSize } = workerData as DecodeWorkerData;
const codec = BlobCodec.fromSpec(codecSpec);
const CREATE = constants.O_WRONLY | constants.O_CREAT;
const NO_FILES: FileTable = { paths: [], tmpPrefix: '', modes: new Uint16Array(), mtimes: new Float64Array(), pieces: new Uint32Array() };

let table = NO_FILES;
let tmps: string[] = [];

parentPort?.on('message', ({ seq, job }: { seq: number; job: PoolJob }) => {
  const failures: JobFailure[] = [];
  try {
    if (job.kind === 'open') {
      const { bytes, ends } = joinParts(openJob(job, failures));
      const reply: JobReply = { seq, failures, plain: bytes, plainEnds: ends };
      return parentPort?.postMessage(reply, [bytes]);
    }
    if (job.kind === 'decode') decodeJob(job, failures);
    else if (job.kind === 'finish') finishJob(job, failures);
    else if (job.kind === 'setup') setUp(job);
    else {
      table = job.table;
      tmps = [];
    }
    parentPort?.postMessage({ seq, failures });
  } catch (err) {
    parentPort?.postMessage({ seq, failures, error: (err as Error).message });
  }
  // The job's opened blobs are garbage now. Freed at once (after the reply, so the cell is not held
  // up), their memory serves the next job instead of fresh pages: see young-gc.ts.
  if (job.kind === 'decode') collectYoung();
});

/** The plaintext of each stored blob of the job; a blob that fails is named in failures and has none. */
function openJob(job: OpenJob, failures: JobFailure[]): Buffer[] {
  return splitParts(job.bytes, job.ends).map((stored, i) => {
    try {
      return codec.decode(stored, job.ids.slice(64 * i, 64 * i + 64));
    } catch (err) {
      failures.push({ index: i, write: -1, message: (err as Error).message });
      return Buffer.alloc(0);
    }
  });
}

function decodeJob(job: DecodeJob, failures: JobFailure[]): void {
  const bytes = job.buf ? Buffer.from(job.buf) : Buffer.from(slab, job.cell * cellSize, job.length);
  const fds = new Map<number, number>();
  try {
    let w = 0;
    for (let i = 0; i < job.blobs.length / 4; i++) {
      const [offset = 0, length = 0, plainLength = 0, writes = 0] = job.blobs.subarray(4 * i, 4 * i + 4);
      const id = job.ids.slice(64 * i, 64 * i + 64);
      let plain: Buffer | null = null;
      try {
        plain = codec.decodeTransient(bytes.subarray(offset, offset + length), id, plainLength);
      } catch (err) {
        failures.push({ index: i, write: -1, message: (err as Error).message });
      }
      for (let end = w + writes; w < end; w++) {
        if (!plain) continue;
        try {
          writePiece(plain, job.writes[2 * w] ?? 0, job.writes[2 * w + 1] ?? 0, fds);
        } catch (err) {
          failures.push({ index: i, write: w, message: (err as Error).message });
        }
      }
    }
  } finally {
    for (const fd of fds.values()) closeSync(fd);
  }
}

/** A file in one piece is created, written, given its meta and renamed at once; a part goes to its offset. */
function writePiece(plain: Buffer, file: number, position: number, fds: Map<number, number>): void {
  if (table.pieces[file] === 1) {
    writeWhole(plain, file);
    return;
  }
  let fd = fds.get(file);
  if (fd === undefined) {
    fd = openSync(tmpOf(file), CREATE, 0o600);
    fds.set(file, fd);
  }
  writeAll(fd, plain, position);
}

function writeWhole(plain: Buffer, file: number): void {
  const tmp = tmpOf(file);
  const fd = openSync(tmp, 'wx', 0o600);
  try {
    writeAll(fd, plain, 0);
    fchmodSync(fd, table.modes[file] ?? 0o600);
    const mtime = timeArg(table.mtimes[file] ?? 0);
    futimesSync(fd, mtime, mtime);
  } catch (err) {
    closeSync(fd);
    unlinkSync(tmp);
    throw err;
  }
  closeSync(fd);
  renameSync(tmp, table.paths[file]!);
}

/** Sets the meta of files written in parts (or creates empty ones) and renames them into place. */
function finishJob(job: FinishJob, failures: JobFailure[]): void {
  job.files.forEach((file, index) => {
    try {
      if (table.pieces[file] === 0) return writeWhole(Buffer.alloc(0), file);
      const tmp = tmpOf(file);
      chmodSync(tmp, table.modes[file] ?? 0o600);
      const mtime = timeArg(table.mtimes[file] ?? 0);
      utimesSync(tmp, mtime, mtime);
      renameSync(tmp, table.paths[file]!);
    } catch (err) {
      failures.push({ index, write: -1, message: (err as Error).message });
    }
  });
}

function tmpOf(file: number): string {
  return (tmps[file] ??= join(dirname(table.paths[file]!), table.tmpPrefix + file.toString(36)));
}

function writeAll(fd: number, data: Buffer, position: number): void {
  for (let done = 0; done < data.length;) done += writeSync(fd, data, done, data.length - done, position + done);
}

function setUp(job: SetupJob): void {
  for (const dir of job.mkdirs) mkdirSync(dir, { recursive: true });
  for (const link of job.symlinks) {
    if (job.replace) rmSync(link.path, { force: true });
    symlinkSync(link.target, link.path);
  }
  for (const dir of job.dirMetas) {
    chmodSync(dir.path, dir.mode);
    const mtime = timeArg(dir.mtime);
    utimesSync(dir.path, mtime, mtime);
  }
}
