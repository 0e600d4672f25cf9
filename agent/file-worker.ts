/**
 * A worker of the file pool (file-pool.ts): reads files, cuts them into chunks, computes blob ids,
 * asks the main thread which ids the repository still needs, and encodes (compresses, encrypts)
 * only those. Reads are synchronous: this thread does nothing else while it waits for the disk, and
 * each worker has its own files, so the disk still sees as many reads as there are workers.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { BlobCodec, PackWriter, type ChunkerParams, type CodecSpec } from '../format/index.js';
import { chunkSync } from './chunker.js';
import type { FileOutcome, ToMain, ToWorker } from './file-pool.js';

const { codecSpec, chunker, packTarget } = workerData as {
  codecSpec: CodecSpec;
  chunker: ChunkerParams;
  packTarget: number;
};
const codec = BlobCodec.fromSpec(codecSpec);
const port = parentPort!;

/** A batch is sent for the "which do you need?" question once it holds this many bytes. */
const BATCH_BYTES = 8 << 20;
/** Read size for large files; at least the chunker's max, so two alternating buffers are enough. */
const READ_SIZE = Math.max(4 << 20, chunker.max);

const answers = new Map<number, (need: Uint8Array) => void>();
/** Read buffers, reused between jobs so big files do not map fresh memory for every read. */
const spareBuffers: Buffer[] = [];

port.on('message', (msg: ToWorker) => {
  if (msg.t === 'need') {
    answers.get(msg.job)?.(msg.need);
    answers.delete(msg.job);
  } else if (msg.t === 'job') {
    runJob(msg.job, msg.paths).catch((err: unknown) => post({ t: 'failed', job: msg.job, error: (err as Error).message }));
  } else if (msg.t === 'buffer') {
    packs.giveBack(Buffer.from(msg.data));
  } else if (msg.t === 'target') {
    packs.target = msg.bytes;
  } else {
    packs.seal().then(
      () => post({ t: 'sealed' }),
      (err: unknown) => post({ t: 'failed', job: -1, error: (err as Error).message }),
    );
  }
});

/**
 * This worker's packs: blobs are written straight into one of two pack buffers; a full pack goes to
 * the main thread (transferred, not copied) for upload and its buffer comes back afterwards. With
 * both buffers away, the worker waits: that is how slow uploads hold the readers back.
 */
class Packs {
  target = packTarget;
  private writer: PackWriter | null = null;
  private buffer: Buffer | null = null;
  private readonly free: Buffer[] = [];
  private made = 0;
  private readonly waiting: (() => void)[] = [];
  private queue: Promise<void> = Promise.resolve();

  /**
   * Encodes blobs straight into the pack, in order; settles once they are in it (not yet uploaded).
   * Everything that compresses on this thread runs in this queue, one blob at a time, which is what
   * BlobCodec.prepare asks.
   */
  add(blobs: { id: string; plain: Buffer }[]): Promise<void> {
    const next = this.queue.then(async () => {
      for (const b of blobs) await this.addOne(b.id, b.plain);
    });
    this.queue = next.catch(() => undefined);
    return next;
  }

  /** Sends the pack being filled, if any. */
  seal(): Promise<void> {
    const next = this.queue.then(() => this.send());
    this.queue = next.catch(() => undefined);
    return next;
  }

  giveBack(buf: Buffer): void {
    this.free.push(buf);
    this.waiting.shift()?.();
  }

  private async addOne(id: string, plain: Buffer): Promise<void> {
    const blob = codec.prepare(plain, id);
    if (this.writer && !this.writer.canAdd(blob.length)) this.send();
    if (!this.writer) {
      this.buffer = await this.takeBuffer();
      this.writer = new PackWriter(this.buffer);
    }
    this.writer.addWritten(id, 'data', blob, plain.length);
    if (this.writer.size >= this.target) this.send();
  }

  private send(): void {
    if (!this.writer || !this.buffer) return;
    const { id, length } = this.writer.finish();
    const data = this.buffer.buffer as ArrayBuffer;
    this.writer = null;
    this.buffer = null;
    post({ t: 'pack', id, length, data }, [data]);
  }

  /** A free pack buffer with room for the current target and one more chunk (a smaller one is dropped). */
  private async takeBuffer(): Promise<Buffer> {
    while (this.free.length === 0 && this.made >= PACK_BUFFERS) await new Promise<void>((r) => this.waiting.push(r));
    const capacity = this.target + 2 * chunker.max + (1 << 20);
    const buf = this.free.pop();
    if (buf && buf.length >= capacity) return buf;
    if (!buf) this.made++;
    return Buffer.allocUnsafeSlow(capacity);
  }
}

/** Pack buffers per worker: one filling while the other uploads. */
const PACK_BUFFERS = 2;
const packs = new Packs();

function post(msg: ToMain, transfer: ArrayBuffer[] = []): void {
  port.postMessage(msg, transfer);
}

/** Chunks of one job waiting for the main thread's answer. */
class Batch {
  ids: string[] = [];
  chunks: Buffer[] = [];
  bytes = 0;

  constructor(private readonly job: number) {}

  add(chunk: Buffer): string {
    const id = codec.id(chunk);
    this.ids.push(id);
    this.chunks.push(chunk);
    this.bytes += chunk.length;
    return id;
  }

  /** Asks which ids are needed, encodes those and sends them in one transfer; empties the batch. */
  async flush(): Promise<void> {
    if (this.ids.length === 0) return;
    const need = await new Promise<Uint8Array>((resolve) => {
      answers.set(this.job, resolve);
      post({ t: 'ask', job: this.job, ids: this.ids });
    });
    const blobs: { id: string; plain: Buffer }[] = [];
    this.ids.forEach((id, i) => {
      if (need[i]) blobs.push({ id, plain: this.chunks[i]! });
    });
    this.ids = [];
    this.chunks = [];
    this.bytes = 0;
    await packs.add(blobs);
  }
}

async function runJob(job: number, paths: string[]): Promise<void> {
  const batch = new Batch(job);
  const files: FileOutcome[] = [];
  let bytesRead = 0;
  for (const path of paths) {
    const ids: string[] = [];
    try {
      for (const piece of readPieces(path)) {
        bytesRead += piece.length;
        for (const chunk of piece.chunks) ids.push(batch.add(chunk));
        // A big file's chunks must be used before its read buffers come round again.
        if (piece.big || batch.bytes >= BATCH_BYTES) await batch.flush();
      }
      files.push({ content: ids });
    } catch (err) {
      files.push({ error: (err as Error).message });
    }
  }
  await batch.flush();
  post({ t: 'done', job, files, bytesRead });
}

interface Piece {
  length: number;
  chunks: Buffer[];
  big: boolean;
}

/**
 * A file's chunks, one read at a time. A file up to READ_SIZE is read whole into a buffer of its
 * own; a bigger one through two alternating READ_SIZE buffers (the caller uses each piece's chunks
 * before asking for the next piece). A file that grew since the scan is read to its real end.
 */
function* readPieces(path: string): Generator<Piece> {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    if (size < READ_SIZE) {
      const buf = Buffer.allocUnsafe(size + 1);
      const n = readFully(fd, buf);
      if (n <= size) return yield { length: n, chunks: n === 0 ? [] : [...chunkSync([buf.subarray(0, n)], chunker)], big: false };
    }
    yield* readBig(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * A big file through three rotating buffers. Every read is followed by at least one chunk (a read
 * holds at least `max` bytes), and the chunks cut before a read are handed out, and used by the
 * caller, before the next one: so a buffer is refilled only once no chunk points into it.
 */
function* readBig(fd: number): Generator<Piece> {
  const buffers = [0, 1, 2].map(() => spareBuffers.pop() ?? Buffer.allocUnsafeSlow(READ_SIZE));
  let reads = 0;
  let position = 0;
  const pieces = function* (): Generator<Buffer> {
    for (;;) {
      const buf = buffers[reads++ % buffers.length]!;
      const n = readFully(fd, buf, position);
      if (n === 0) return;
      position += n;
      yield buf.subarray(0, n);
      if (n < buf.length) return;
    }
  };
  try {
    let pending: Buffer[] = [];
    let pendingLength = 0;
    let handedAt = 0;
    for (const chunk of chunkSync(pieces(), chunker)) {
      if (reads !== handedAt && pending.length > 0) {
        yield { length: pendingLength, chunks: pending, big: true };
        pending = [];
        pendingLength = 0;
      }
      handedAt = reads;
      pending.push(chunk);
      pendingLength += chunk.length;
    }
    if (pending.length > 0) yield { length: pendingLength, chunks: pending, big: true };
  } finally {
    spareBuffers.push(...buffers);
  }
}

/** Reads until buf is full or the file ends; returns the bytes read. */
function readFully(fd: number, buf: Buffer, position: number | null = null): number {
  let n = 0;
  while (n < buf.length) {
    const got = readSync(fd, buf, n, buf.length - n, position === null ? null : position + n);
    if (got === 0) break;
    n += got;
  }
  return n;
}
