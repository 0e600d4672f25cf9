import { resolve } from 'node:path';
import { Worker } from 'node:worker_threads';
import { defaultWarning, type ScanEntry, type ScanOptions } from './scan.js';

/** An entry, or a path the scan could not read (in the place where it met it). */
export type ScanItem = ScanEntry | { warning: string; message: string } | { rootListing: string };

/** What the worker is given: the folders to walk, in order, and how. */
export interface ScanWork {
  roots: string[];
  exclude: string[];
  listings: boolean;
}

export type ToScanWorker = { t: 'ack' };
export type ToScanMain =
  { t: 'batch'; root: number; items: ScanItem[]; last: boolean } | { t: 'error'; root: number; message: string; code?: string | undefined };

/**
 * scan() (scan.ts) on a worker thread: the same entries in the same order, while this thread
 * compares them with the parent snapshot. The directory reads and lstat calls, about half the
 * work of an incremental backup of many unchanged files, then run on a core of their own.
 *
 * The walk starts as soon as the thread is made, folder after folder, and runs ahead of the reader
 * by up to IN_FLIGHT batches (see scan-worker.ts): started before the repository is opened, it has
 * done much of its work by the time the backup compares. scan() takes the folders in the same order.
 */
export class ScanThread {
  private readonly worker: Worker;
  private readonly roots: string[];
  private readonly queue: ToScanMain[] = [];
  private wake: (() => void) | null = null;
  private crashed: Error | null = null;
  private next = 0;
  private busy = false;
  /** Set by close(), or when a walk was abandoned half way (its batches may still come). */
  private stopped = false;

  constructor(roots: string[], opts: { exclude?: string[]; listings?: boolean } = {}) {
    this.roots = roots.map((r) => resolve(r));
    const workerData: ScanWork = { roots: this.roots, exclude: opts.exclude ?? [], listings: opts.listings ?? false };
    this.worker = new Worker(new URL('./scan-worker.js', import.meta.url), { workerData });
    this.worker.unref();
    this.worker.on('message', (msg: ToScanMain) => {
      this.queue.push(msg);
      this.wake?.();
    });
    this.worker.on('error', (err: Error) => {
      this.crashed = err;
      this.wake?.();
    });
  }

  /** The entries of the next folder (which must be root); opts gives the callbacks, not the exclusions. */
  async *scan(root: string, opts: Pick<ScanOptions, 'onWarning' | 'onRootListing'> = {}): AsyncGenerator<ScanEntry> {
    const index = this.next;
    if (this.busy || this.stopped || this.roots[index] !== resolve(root)) {
      throw new Error(`ScanThread walks ${this.roots.join(', ')} in that order, once, and not after close()`);
    }
    this.busy = true;
    this.next++;
    let finished = false;
    try {
      for (;;) {
        while (this.queue.length === 0 && !this.crashed) await new Promise<void>((r) => (this.wake = r));
        this.wake = null;
        if (this.crashed) throw this.crashed;
        const msg = this.queue.shift()!;
        if (msg.root !== index) continue;
        if (msg.t === 'error') {
          finished = true;
          throw Object.assign(new Error(msg.message), { code: msg.code });
        }
        this.worker.postMessage({ t: 'ack' } satisfies ToScanWorker);
        for (const item of msg.items) {
          if ('warning' in item) (opts.onWarning ?? defaultWarning)(item.warning, new Error(item.message));
          else if ('rootListing' in item) opts.onRootListing?.(item.rootListing);
          else yield item;
        }
        if (msg.last) {
          finished = true;
          return;
        }
      }
    } finally {
      this.busy = false;
      if (!finished) void this.close();
    }
  }

  /** Stops the worker (a walk in progress is abandoned). */
  async close(): Promise<void> {
    this.stopped = true;
    await this.worker.terminate();
  }
}
