import { Worker } from 'node:worker_threads';
import { defaultWarning, type ScanEntry, type ScanOptions } from './scan.js';

/** An entry, or a path the scan could not read (in the place where it met it). */
export type ScanItem = ScanEntry | { warning: string; message: string } | { rootListing: string };

export type ToScanWorker = { t: 'scan'; root: string; exclude: string[]; listings: boolean } | { t: 'ack' };
export type ToScanMain = { t: 'batch'; items: ScanItem[]; last: boolean } | { t: 'error'; message: string; code?: string | undefined };

/**
 * scan() (scan.ts) on a worker thread: the same entries in the same order, while this thread
 * compares them with the parent snapshot. The directory reads and lstat calls, about half the
 * work of an incremental backup of many unchanged files, then run on a core of their own.
 * One folder is walked at a time; the worker is started at once, so it is ready when needed.
 */
export class ScanThread {
  private readonly worker = new Worker(new URL('./scan-worker.js', import.meta.url));
  private busy = false;
  /** Set when a walk was abandoned half way: its batches may still come, so the worker is stopped. */
  private stopped = false;

  constructor() {
    this.worker.unref();
  }

  async *scan(root: string, opts: ScanOptions = {}): AsyncGenerator<ScanEntry> {
    if (this.busy || this.stopped) throw new Error('ScanThread walks one folder at a time, and not after close()');
    this.busy = true;
    const batches: ToScanMain[] = [];
    let wake: (() => void) | null = null;
    let crashed: Error | null = null;
    const onMessage = (msg: ToScanMain) => {
      batches.push(msg);
      wake?.();
    };
    const onError = (err: Error) => {
      crashed = err;
      wake?.();
    };
    this.worker.on('message', onMessage).on('error', onError);
    let finished = false;
    try {
      this.worker.postMessage({ t: 'scan', root, exclude: opts.exclude ?? [], listings: opts.listings ?? false } satisfies ToScanWorker);
      for (;;) {
        while (batches.length === 0 && !crashed) await new Promise<void>((r) => (wake = r));
        wake = null;
        if (crashed) throw crashed;
        const msg = batches.shift()!;
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
      this.worker.off('message', onMessage).off('error', onError);
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
