import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { BlobCodec, ChunkerParams } from '../format/index.js';

/** A file's blob ids, or why it could not be read. */
export type FileOutcome = { content: string[] } | { error: string };

/** Messages from the main thread to a worker. */
export type ToWorker =
  | { t: 'job'; job: number; paths: string[] }
  | { t: 'need'; job: number; need: Uint8Array }
  /** A pack buffer back from its upload. */
  | { t: 'buffer'; data: ArrayBuffer }
  /** The pack size to aim for now (it follows the upload rate). */
  | { t: 'target'; bytes: number }
  /** Send the pack being filled: the backup is ending. */
  | { t: 'seal' };

/** Messages from a worker: a question, encoded blobs, a job's end. */
export type ToMain =
  | { t: 'ask'; job: number; ids: string[] }
  | { t: 'pack'; id: string; length: number; data: ArrayBuffer }
  | { t: 'sealed' }
  | { t: 'done'; job: number; files: FileOutcome[]; bytesRead: number }
  | { t: 'failed'; job: number; error: string };

/** What the pool asks of its owner (the archiver): deduplication and packing. */
export interface BlobSink {
  /**
   * For each id, whether it must be stored (1) or is held already or claimed by another file (0).
   * Claims the ids it answers 1 for. May wait, which holds the worker back (uploads behind).
   */
  need(ids: string[]): Promise<Uint8Array>;
  /** Uploads a finished pack of data blobs; settles when it is stored (or failed: the sink remembers why). */
  upload(id: string, bytes: Buffer): Promise<void>;
}

export interface JobResult {
  files: FileOutcome[];
  bytesRead: number;
}

interface Running {
  worker: Worker;
  resolve: (r: JobResult) => void;
  reject: (err: Error) => void;
}

/**
 * Reading, chunking, hashing and encoding files on worker threads: the main thread only scans,
 * builds trees and uploads, so every core works on file contents. A job is one big file or a
 * handful of small ones; each worker runs two at a time (one computes while the other waits for an
 * answer), which with the bounded batches in file-worker.ts bounds memory.
 */
export class FilePool {
  private readonly workers: Worker[];
  private readonly load = new Map<Worker, number>();
  private readonly running = new Map<number, Running>();
  private readonly slots: (() => void)[] = [];
  private nextJob = 0;
  private failure: Error | null = null;
  private sealing: (() => void)[] = [];

  private sink: BlobSink | null = null;

  /** Starts the workers at once (loading their code takes a moment); jobs wait for attach(). */
  constructor(
    codec: BlobCodec,
    chunker: ChunkerParams,
    packTarget: number,
    size = availableParallelism(),
    private readonly perWorker = 2,
  ) {
    const workerData = { codecSpec: codec.spec(), chunker: { ...chunker }, packTarget };
    this.workers = Array.from({ length: Math.max(1, size) }, () => this.spawn(workerData));
  }

  /** Names who answers the workers' questions and uploads their packs (the archiver). */
  attach(sink: BlobSink): this {
    this.sink = sink;
    return this;
  }

  /**
   * Waits for a free slot, then starts a job on the least busy worker; `result` settles when the
   * job's files are read and their new blobs handed to the sink. The wrapper keeps the waits apart.
   */
  async run(paths: string[]): Promise<{ result: Promise<JobResult> }> {
    if (!this.sink) throw new Error('the file pool has no sink: attach() first');
    for (;;) {
      if (this.failure) throw this.failure;
      const worker = this.freeWorker();
      if (worker) return { result: this.start(worker, paths) };
      await new Promise<void>((r) => this.slots.push(r));
    }
  }

  /** Tells the workers the pack size to aim for. */
  setPackTarget(bytes: number): void {
    for (const w of this.workers) w.postMessage({ t: 'target', bytes } satisfies ToWorker);
  }

  /** Has every worker send the pack it is filling; settles once they are all handed to the sink. */
  async seal(): Promise<void> {
    await Promise.all(
      this.workers.map(
        (w) =>
          new Promise<void>((resolve) => {
            this.sealing.push(resolve);
            w.postMessage({ t: 'seal' } satisfies ToWorker);
          }),
      ),
    );
    if (this.failure) throw this.failure;
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }

  private freeWorker(): Worker | undefined {
    let best: Worker | undefined;
    for (const w of this.workers)
      if ((this.load.get(w) ?? 0) < this.perWorker && (!best || this.load.get(w)! < this.load.get(best)!)) best = w;
    return best;
  }

  private start(worker: Worker, paths: string[]): Promise<JobResult> {
    const job = this.nextJob++;
    this.load.set(worker, (this.load.get(worker) ?? 0) + 1);
    return new Promise<JobResult>((resolve, reject) => {
      this.running.set(job, { worker, resolve, reject });
      worker.postMessage({ t: 'job', job, paths } satisfies ToWorker);
    });
  }

  private finish(job: number): Running | undefined {
    const running = this.running.get(job);
    this.running.delete(job);
    if (running) this.load.set(running.worker, this.load.get(running.worker)! - 1);
    this.slots.shift()?.();
    return running;
  }

  private spawn(workerData: unknown): Worker {
    const worker = new Worker(new URL('./file-worker.js', import.meta.url), { workerData });
    this.load.set(worker, 0);
    worker.on('message', (msg: ToMain) => this.onMessage(worker, msg));
    worker.on('error', (err) => this.fail(err));
    return worker;
  }

  private onMessage(worker: Worker, msg: ToMain): void {
    if (msg.t === 'ask') {
      this.sink!.need(msg.ids).then(
        (need) => worker.postMessage({ t: 'need', job: msg.job, need } satisfies ToWorker),
        (err: unknown) => this.fail(err as Error),
      );
    } else if (msg.t === 'pack') {
      const done = this.sink!.upload(msg.id, Buffer.from(msg.data, 0, msg.length));
      done.finally(() => worker.postMessage({ t: 'buffer', data: msg.data } satisfies ToWorker, [msg.data])).catch(() => undefined);
    } else if (msg.t === 'sealed') {
      this.sealing.shift()?.();
    } else if (msg.t === 'done') {
      this.finish(msg.job)?.resolve({ files: msg.files, bytesRead: msg.bytesRead });
    } else if (msg.job < 0) {
      this.fail(new Error(`the file reader failed: ${msg.error}`));
    } else {
      this.finish(msg.job)?.reject(new Error(`the file reader failed: ${msg.error}`));
    }
  }

  /** A broken worker or sink ends the backup: every job still running fails with the reason. */
  private fail(err: Error): void {
    this.failure ??= err;
    for (const job of [...this.running.keys()]) this.finish(job)?.reject(err);
    for (const wake of [...this.slots.splice(0), ...this.sealing.splice(0)]) wake();
  }
}
