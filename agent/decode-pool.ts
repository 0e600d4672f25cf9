import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { MasterKeys } from '../format/index.js';

/**
 * The files of one restore, sent once to every worker so that jobs name files by index. File i is
 * written as `<dirname(paths[i])>/<tmpPrefix><i in base 36>` and renamed to paths[i]; pieces[i] is
 * how many blob pieces it has (1: written whole at once, 0: created empty).
 */
export interface FileTable {
  paths: string[];
  tmpPrefix: string;
  modes: Uint16Array;
  /** Modification times in seconds (microsecond precision). */
  mtimes: Float64Array;
  pieces: Uint32Array;
}

/** The bytes of one ranged GET (transferred, not copied) and where each blob's plaintext goes. */
export interface DecodeJob {
  kind: 'decode';
  buf: ArrayBuffer;
  /** The blob ids, 64 hex each, one after the other. */
  ids: string;
  /** Per blob: offset in buf, stored length, plain length, number of writes. */
  blobs: Float64Array;
  /** Per write, blob after blob: file index, position in the file. */
  writes: Float64Array;
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
  dirMetas: { path: string; mode: number; mtime: number }[];
}

export interface TableJob {
  kind: 'table';
  table: FileTable;
}

export type PoolJob = DecodeJob | FinishJob | SetupJob | TableJob;

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
 * Workers for this machine: the main thread keeps a core for HTTP, and beyond three workers one
 * thread's downloads cannot keep them busy. On two cores, one worker restores as fast as two with
 * less memory and CPU.
 */
export function defaultWorkers(): number {
  return Math.min(3, Math.max(1, availableParallelism() - 1));
}

interface Pending {
  resolve: (failures: JobFailure[]) => void;
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
 * Restore's counterpart of EncodePool: blob decoding (AES-GCM open, zstd, id check) and the file writes
 * on worker threads, so the main thread only talks HTTP and keeps the books. Fetched bytes are counted
 * from reserve() until their job is done, which bounds memory.
 */
export class DecodePool {
  private readonly slots: Slot[];
  private readonly pending = new Map<number, Pending>();
  private readonly waiters: (() => void)[] = [];
  private seq = 0;
  private reserved = 0;

  constructor(
    keys: MasterKeys | null,
    size = defaultWorkers(),
    private readonly maxBytes = 16 << 20,
  ) {
    const workerData = { encKey: keys?.encKey ?? null, idKey: keys?.idKey ?? null };
    this.slots = Array.from({ length: Math.max(1, size) }, () => this.spawn(workerData));
  }

  /** Waits until `bytes` more fit under the limit (a lone job larger than the limit is let through). */
  async reserve(bytes: number): Promise<void> {
    while (this.reserved > 0 && this.reserved + bytes > this.maxBytes) await new Promise<void>((r) => this.waiters.push(r));
    this.reserved += bytes;
  }

  release(bytes: number): void {
    this.reserved -= bytes;
    for (const wake of this.waiters.splice(0)) wake();
  }

  /**
   * Decodes fetched bytes on a worker, reserved bytes being released once it is done. The response's own
   * ArrayBuffer moves to the worker when the bytes fill it, else they are copied once.
   */
  async decode(bytes: Buffer, blobs: Pick<DecodeJob, 'ids' | 'blobs' | 'writes'>): Promise<JobFailure[]> {
    const size = bytes.length; // the transfer below empties bytes
    const whole = bytes.buffer instanceof ArrayBuffer && bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength;
    const buf = whole ? (bytes.buffer as ArrayBuffer) : new Uint8Array(bytes).buffer;
    try {
      return await this.run({ kind: 'decode', buf, ...blobs });
    } finally {
      this.release(size);
    }
  }

  /** Runs a job on the least busy worker; resolves with its failures, rejects when the job or the worker breaks. */
  run(job: PoolJob): Promise<JobFailure[]> {
    return this.post(
      this.slots.reduce((a, b) => (b.load < a.load ? b : a)),
      job,
    );
  }

  /** Runs the same job on every worker (the file table). */
  async broadcast(job: PoolJob): Promise<void> {
    await Promise.all(this.slots.map((slot) => this.post(slot, job)));
  }

  async close(): Promise<void> {
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }

  private post(slot: Slot, job: PoolJob): Promise<JobFailure[]> {
    const load = 1 + (job.kind === 'decode' ? job.buf.byteLength : 0);
    slot.load += load;
    const seq = this.seq++;
    return new Promise<JobFailure[]>((resolve, reject) => {
      if (slot.broken) return reject(slot.broken);
      this.pending.set(seq, { resolve, reject, slot, load });
      slot.worker.postMessage({ seq, job }, job.kind === 'decode' ? [job.buf] : []);
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

  private spawn(workerData: unknown): Slot {
    const worker = new Worker(new URL('./decode-worker.js', import.meta.url), { workerData });
    const slot: Slot = { worker, load: 0, broken: null };
    worker.on('message', (msg: { seq: number; failures: JobFailure[]; error?: string }) => {
      const p = this.pending.get(msg.seq);
      if (!p) return;
      this.pending.delete(msg.seq);
      p.slot.load -= p.load;
      if (msg.error !== undefined) p.reject(new Error(msg.error));
      else p.resolve(msg.failures);
    });
    worker.on('error', (err) => this.fail(slot, err));
    worker.on('exit', (code) => this.fail(slot, new Error(`a decode worker stopped (exit code ${code})`)));
    return slot;
  }
}
