import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { MasterKeys } from '../format/index.js';

export interface Encoded {
  id: string;
  stored: Buffer;
}

interface Waiter {
  resolve: (e: Encoded) => void;
  reject: (err: Error) => void;
}

/**
 * Blob encoding (id, compression, encryption) on worker threads, so the main thread keeps reading,
 * chunking and uploading while another core encodes: the part of a backup that pays for a second
 * core. At most `limit` chunks are in flight, which bounds memory.
 */
export class EncodePool {
  private readonly workers: Worker[];
  private readonly waiting = new Map<number, Waiter>();
  private readonly slots: (() => void)[] = [];
  private seq = 0;
  private next = 0;
  private inFlight = 0;

  constructor(
    keys: MasterKeys | null,
    size = Math.max(1, availableParallelism() - 1),
    private readonly limit = 16,
  ) {
    const workerData = { encKey: keys?.encKey ?? null, idKey: keys?.idKey ?? null };
    this.workers = Array.from({ length: size }, () => this.spawn(workerData));
  }

  /**
   * Waits for a free slot, then hands a copy of plain (the caller's buffer may be reused at once) to
   * a worker; `result` settles when the worker is done. The wrapper keeps the two waits apart.
   */
  async submit(plain: Buffer): Promise<{ result: Promise<Encoded> }> {
    while (this.inFlight >= this.limit) await new Promise<void>((r) => this.slots.push(r));
    this.inFlight++;
    const copy = new ArrayBuffer(plain.length);
    new Uint8Array(copy).set(plain);
    const seq = this.seq++;
    const worker = this.workers[this.next++ % this.workers.length]!;
    const result = new Promise<Encoded>((resolve, reject) => {
      this.waiting.set(seq, { resolve, reject });
      worker.postMessage({ seq, plain: copy }, [copy]);
    });
    return { result };
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }

  private spawn(workerData: unknown): Worker {
    const worker = new Worker(new URL('./encode-worker.js', import.meta.url), { workerData });
    worker.on('message', (msg: { seq: number; id?: string; stored?: ArrayBuffer; error?: string }) => {
      const waiter = this.waiting.get(msg.seq);
      this.waiting.delete(msg.seq);
      this.inFlight--;
      this.slots.shift()?.();
      if (!waiter) return;
      if (msg.error || !msg.id || !msg.stored) waiter.reject(new Error(msg.error ?? 'the encoder failed'));
      else waiter.resolve({ id: msg.id, stored: Buffer.from(msg.stored) });
    });
    worker.on('error', (err) => {
      for (const w of this.waiting.values()) w.reject(err);
      this.waiting.clear();
    });
    return worker;
  }
}
