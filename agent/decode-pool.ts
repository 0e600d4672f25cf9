import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { BlobCodec, CodecSpec } from '../format/index.js';

/**
 * The files of one restore, sent once to every worker so that jobs name files by index. File i is
 * written as `<dirname(paths[i])>/<tmpPrefix><i in base 36>` and renamed to paths[i]; pieces[i] is
 * how many blob pieces it has (1: written whole at once, 0: created empty).
 */
export interface FileTable {
  paths: string[];
  tmpPrefix: string;
  modes: Uint16Array;
  /** Modification times in seconds, as restoreTime (file-times.ts) gives them. */
  mtimes: Float64Array;
  pieces: Uint32Array;
}

/**
 * The bytes of one ranged GET and where each blob's plaintext goes. The bytes sit in a cell of the
 * pool's shared slab (buf null), or, for a run larger than a cell, in buf, moved to the worker.
 */
export interface DecodeJob {
  kind: 'decode';
  cell: number;
  length: number;
  buf: ArrayBuffer | null;
  /** The blob ids, 64 hex each, one after the other. */
  ids: string;
  /** Per blob: offset in the bytes, stored length, plain length, number of writes. */
  blobs: Float64Array;
  /** Per write, blob after blob: file index, position in the file. */
  writes: Float64Array;
}

/** What restore fills with one ranged GET before handing it to decode(). */
export interface FetchBuffer {
  bytes: Buffer;
  /** The slab cell, or -1 for memory of its own. */
  cell: number;
}

/** The shared slab that carries fetched bytes to the workers without copies or transfers. */
export interface SlabOptions {
  cells: number;
  cellSize: number;
}

/** What a worker gets at its start. */
export interface DecodeWorkerData {
  codecSpec: CodecSpec;
  slab: SharedArrayBuffer;
  cellSize: number;
}

/** Files whose pieces are all written (or empty files): meta, then rename. */
export interface FinishJob {
  kind: 'finish';
  files: number[];
}

/** Folders and links before the files, or folders' meta after them; any failure rejects the job. */
export interface SetupJob {
  kind: 'setup';
  mkdirs: string[];
  symlinks: { path: string; target: string }[];
  /** Remove what is at a link's path first (restoring over an earlier restore). */
  replace: boolean;
  /** mtime: seconds, as restoreTime gives them. */
  dirMetas: { path: string; mode: number; mtime: number }[];
}

export interface TableJob {
  kind: 'table';
  table: FileTable;
}

/**
 * Stored blobs to open (decrypt, decompress, check) on a worker: the snapshot's trees before a
 * restore. bytes holds them one after the other; the reply carries their plaintexts the same way.
 */
export interface OpenJob {
  kind: 'open';
  /** The blob ids, 64 hex each, one after the other. */
  ids: string;
  bytes: ArrayBuffer;
  /** Where each blob ends in bytes. */
  ends: Float64Array;
}

export type PoolJob = DecodeJob | FinishJob | SetupJob | TableJob | OpenJob;

/** Parts one after the other in one ArrayBuffer (it moves to the other thread), and where each ends. */
export function joinParts(parts: readonly Uint8Array[]): { bytes: ArrayBuffer; ends: Float64Array } {
  const bytes = new ArrayBuffer(parts.reduce((n, part) => n + part.length, 0));
  const view = new Uint8Array(bytes);
  const ends = new Float64Array(parts.length);
  let at = 0;
  parts.forEach((part, i) => {
    view.set(part, at);
    ends[i] = at += part.length;
  });
  return { bytes, ends };
}

/** The parts of joinParts again, as views of bytes. */
export function splitParts(bytes: ArrayBuffer, ends: Float64Array): Buffer[] {
  let start = 0;
  return Array.from(ends, (end) => {
    const part = Buffer.from(bytes, start, end - start);
    start = end;
    return part;
  });
}

/** A worker's answer to a job; an open job's also carries the plaintexts (a blob that failed has none). */
export interface JobReply {
  seq: number;
  failures: JobFailure[];
  error?: string;
  plain?: ArrayBuffer;
  /** Where each blob's plaintext ends in plain. */
  plainEnds?: Float64Array;
}

/**
 * What went wrong in a job: for a decode job, blob `index` did not decode (write -1) or write number
 * `write` (counted over the whole job) failed; for a finish job, files[index] could not be finished.
 */
export interface JobFailure {
  index: number;
  write: number;
  message: string;
}

/**
 * Workers for this machine: one per core, since the main thread's HTTP work is lighter than a
 * worker's decoding and writing (on two cores, one worker left a core idle while it was the
 * bottleneck: 12 to 14 s against 8 s restoring into memory), and no more than three, as beyond that
 * one thread's downloads cannot keep them busy.
 */
export function defaultWorkers(): number {
  return Math.min(3, Math.max(1, availableParallelism()));
}

interface Pending {
  resolve: (reply: JobReply) => void;
  reject: (err: Error) => void;
  slot: Slot;
  load: number;
}

interface Slot {
  worker: Worker;
  load: number;
  /** Why the worker stopped: a job posted to it would never be answered. */
  broken: Error | null;
}

/**
 * Restore's counterpart of EncodePool: blob decoding (AES-GCM open bound to the blob id, zstd; the
 * id check for version 1 and plaintext repositories) and the file writes on worker threads, so the
 * main thread only talks HTTP and keeps the books. Fetched bytes go into
 * the cells of one SharedArrayBuffer that the workers read in place: memory stays fixed, and neither
 * thread allocates (and garbage-collects) a buffer per request.
 */
export class DecodePool {
  private readonly slots: Slot[];
  private readonly pending = new Map<number, Pending>();
  private readonly slab: SharedArrayBuffer;
  private readonly free: number[];
  /** A run larger than a cell has memory of its own, one at a time. */
  private ownInUse = false;
  private readonly waiters: (() => void)[] = [];
  private seq = 0;

  constructor(
    codec: BlobCodec,
    size = defaultWorkers(),
    private readonly slabOptions: SlabOptions = { cells: 4, cellSize: 4 << 20 },
  ) {
    this.slab = new SharedArrayBuffer(slabOptions.cells * slabOptions.cellSize);
    this.free = Array.from({ length: slabOptions.cells }, (_, i) => slabOptions.cells - 1 - i);
    const workerData: DecodeWorkerData = {
      codecSpec: codec.spec(),
      slab: this.slab,
      cellSize: slabOptions.cellSize,
    };
    this.slots = Array.from({ length: Math.max(1, size) }, () => this.spawn(workerData));
  }

  /** A buffer of exactly `size` bytes to fetch into; waits until a cell (above a cell's size: the own buffer) is free. */
  async acquire(size: number): Promise<FetchBuffer> {
    const { cellSize } = this.slabOptions;
    if (size > cellSize) {
      while (this.ownInUse) await new Promise<void>((r) => this.waiters.push(r));
      this.ownInUse = true;
      return { bytes: Buffer.from(new ArrayBuffer(size)), cell: -1 };
    }
    let cell = this.free.pop();
    while (cell === undefined) {
      await new Promise<void>((r) => this.waiters.push(r));
      cell = this.free.pop();
    }
    return { bytes: Buffer.from(this.slab, cell * cellSize, size), cell };
  }

  /** Gives back a buffer that will not be decoded (its fetch failed). */
  release(buf: FetchBuffer): void {
    if (buf.cell < 0) this.ownInUse = false;
    else this.free.push(buf.cell);
    for (const wake of this.waiters.splice(0)) wake();
  }

  /** Decodes buf's bytes on a worker, and releases buf once that is done. */
  async decode(buf: FetchBuffer, blobs: Pick<DecodeJob, 'ids' | 'blobs' | 'writes'>): Promise<JobFailure[]> {
    const length = buf.bytes.length;
    // Memory of its own is an ArrayBuffer that the bytes fill exactly: it moves to the worker.
    const own = buf.cell < 0 ? (buf.bytes.buffer as ArrayBuffer) : null;
    try {
      return await this.run({ kind: 'decode', cell: buf.cell, length, buf: own, ...blobs });
    } finally {
      this.release(buf);
    }
  }

  /** Runs a job on the least busy worker; resolves with its failures, rejects when the job or the worker breaks. */
  async run(job: PoolJob): Promise<JobFailure[]> {
    return (await this.post(this.leastBusy(), job)).failures;
  }

  /**
   * Opens stored blobs on the least busy worker (BlobOpener, trees.ts): their plaintexts in order,
   * null for a blob that does not open or does not match its id.
   */
  async open(items: { id: string; stored: Uint8Array }[]): Promise<(Buffer | null)[]> {
    const { bytes, ends } = joinParts(items.map((item) => item.stored));
    const reply = await this.post(this.leastBusy(), { kind: 'open', ids: items.map((item) => item.id).join(''), bytes, ends });
    const failed = new Set(reply.failures.map((f) => f.index));
    const plains = splitParts(reply.plain ?? new ArrayBuffer(0), reply.plainEnds ?? new Float64Array(items.length));
    return plains.map((plain, i) => (failed.has(i) ? null : plain));
  }

  /** Runs the same job on every worker (the file table). */
  async broadcast(job: PoolJob): Promise<void> {
    await Promise.all(this.slots.map((slot) => this.post(slot, job)));
  }

  private leastBusy(): Slot {
    return this.slots.reduce((a, b) => (b.load < a.load ? b : a));
  }

  async close(): Promise<void> {
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }

  private post(slot: Slot, job: PoolJob): Promise<JobReply> {
    const load = 1 + (job.kind === 'decode' ? job.length : job.kind === 'open' ? job.bytes.byteLength : 0);
    slot.load += load;
    const seq = this.seq++;
    const moved = job.kind === 'decode' && job.buf ? [job.buf] : job.kind === 'open' ? [job.bytes] : [];
    return new Promise<JobReply>((resolve, reject) => {
      if (slot.broken) return reject(slot.broken);
      this.pending.set(seq, { resolve, reject, slot, load });
      slot.worker.postMessage({ seq, job }, moved);
    });
  }

  /** A broken worker fails the jobs it holds. */
  private fail(slot: Slot, err: Error): void {
    slot.broken ??= err;
    for (const [seq, p] of this.pending) {
      if (p.slot !== slot) continue;
      this.pending.delete(seq);
      p.reject(err);
    }
  }

  private spawn(workerData: DecodeWorkerData): Slot {
    const worker = new Worker(new URL('./decode-worker.js', import.meta.url), { workerData });
    const slot: Slot = { worker, load: 0, broken: null };
    worker.on('message', (msg: JobReply) => {
      const p = this.pending.get(msg.seq);
      if (!p) return;
      this.pending.delete(msg.seq);
      p.slot.load -= p.load;
      if (msg.error !== undefined) p.reject(new Error(msg.error));
      else p.resolve(msg);
    });
    worker.on('error', (err) => this.fail(slot, err));
    worker.on('exit', (code) => this.fail(slot, new Error(`a decode worker stopped (exit code ${code})`)));
    return slot;
  }
}
