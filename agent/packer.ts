import { PackBuilder, type BlobType } from '../format/index.js';

/** Where finished packs go (the gateway, in practice). */
export interface PackSink {
  putPack(id: string, bytes: Buffer): Promise<void>;
}

const KiB = 1024;
const MiB = 1024 * KiB;

/**
 * The pack size follows the measured upload rate so each PUT takes a few seconds (the patent's
 * speed → size table): slow links get small parts that are cheap to redo after an interruption, fast
 * links big ones that keep request overhead low.
 *
 *   measured rate        target pack size
 *   < 256 KiB/s          512 KiB
 *   < 1 MiB/s            2 MiB
 *   < 4 MiB/s            8 MiB
 *   < 16 MiB/s           16 MiB
 *   < 64 MiB/s           32 MiB
 *   ≥ 64 MiB/s           64 MiB
 */
export const SIZE_TABLE: readonly [number, number][] = [
  [256 * KiB, 512 * KiB],
  [1 * MiB, 2 * MiB],
  [4 * MiB, 8 * MiB],
  [16 * MiB, 16 * MiB],
  [64 * MiB, 32 * MiB],
  [Infinity, 64 * MiB],
];

export function packSizeFor(bytesPerSecond: number): number {
  return (SIZE_TABLE.find(([below]) => bytesPerSecond < below) ?? SIZE_TABLE[SIZE_TABLE.length - 1])![1];
}

/**
 * Bundles blobs into packs and uploads them, at most `parallel` at a time, while the caller keeps
 * reading. add() waits only when uploads fall behind. Counts what it sent for the summary.
 */
export class Packer {
  private builder = new PackBuilder();
  private readonly inFlight = new Set<Promise<void>>();
  private target = 8 * MiB;
  private rate = 0;
  private failure: unknown = null;
  uploadedBytes = 0;
  uploadedPacks = 0;

  constructor(
    private readonly sink: PackSink,
    private readonly parallel = 2,
    private readonly onUploaded?: (bytes: number) => void,
  ) {}

  async add(id: string, type: BlobType, stored: Buffer, plainLength: number): Promise<void> {
    if (this.failure) throw this.failure;
    if (!this.builder.canAdd(stored.length)) await this.flush();
    this.builder.add(id, type, stored, plainLength);
    if (this.builder.size >= this.target) await this.flush();
  }

  /** Uploads what is pending and waits for every upload. */
  async finish(): Promise<void> {
    await this.flush();
    await Promise.all(this.inFlight);
    if (this.failure) throw this.failure;
  }

  /** Waits for the uploads already started (after a cancel), dropping the unfinished pack. */
  async drain(): Promise<void> {
    this.builder = new PackBuilder();
    await Promise.allSettled(this.inFlight);
  }

  get targetSize(): number {
    return this.target;
  }

  private async flush(): Promise<void> {
    if (this.builder.count === 0) return;
    const { id, bytes } = this.builder.finish();
    this.builder = new PackBuilder();
    while (this.inFlight.size >= this.parallel) await Promise.race(this.inFlight);
    if (this.failure) throw this.failure;
    const upload = this.upload(id, bytes).finally(() => this.inFlight.delete(upload));
    this.inFlight.add(upload);
  }

  private async upload(id: string, bytes: Buffer): Promise<void> {
    const started = performance.now();
    try {
      await this.sink.putPack(id, bytes);
    } catch (err) {
      this.failure ??= err;
      return;
    }
    const seconds = Math.max((performance.now() - started) / 1000, 0.001);
    const observed = (bytes.length / seconds) * Math.max(1, this.inFlight.size);
    this.rate = this.rate === 0 ? observed : 0.7 * this.rate + 0.3 * observed;
    this.target = packSizeFor(this.rate);
    this.uploadedBytes += bytes.length;
    this.uploadedPacks++;
    this.onUploaded?.(bytes.length);
  }
}
