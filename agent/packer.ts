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
 * links big ones that keep request overhead low. The agent holds up to four packs at once (two
 * readers each filling one and uploading one), so 64 MiB packs are kept for links of 1 GiB/s and
 * more; below that, 32 MiB PUTs already cost only a few milliseconds of request overhead each.
 *
 *   measured rate        target pack size
 *   < 256 KiB/s          512 KiB
 *   < 1 MiB/s            2 MiB
 *   < 4 MiB/s            8 MiB
 *   < 16 MiB/s           16 MiB
 *   < 1 GiB/s            32 MiB
 *   ≥ 1 GiB/s            64 MiB
 */
export const SIZE_TABLE: readonly [number, number][] = [
  [256 * KiB, 512 * KiB],
  [1 * MiB, 2 * MiB],
  [4 * MiB, 8 * MiB],
  [16 * MiB, 16 * MiB],
  [1024 * MiB, 32 * MiB],
  [Infinity, 64 * MiB],
];

/** The pack size before any upload has been measured. */
export const FIRST_PACK_SIZE = 8 * MiB;

export function packSizeFor(bytesPerSecond: number): number {
  return (SIZE_TABLE.find(([below]) => bytesPerSecond < below) ?? SIZE_TABLE[SIZE_TABLE.length - 1])![1];
}

/**
 * Bundles blobs into packs and uploads them, at most `parallel` at a time, while the caller keeps
 * reading. add() waits only when uploads fall behind. Counts what it sent for the summary.
 */
export class Packer {
  private builders: Record<BlobType, PackBuilder> = { data: new PackBuilder(), tree: new PackBuilder() };
  private readonly inFlight = new Set<Promise<void>>();
  private target = FIRST_PACK_SIZE;
  private rate = 0;
  private failure: unknown = null;
  uploadedBytes = 0;
  uploadedPacks = 0;

  constructor(
    private readonly sink: PackSink,
    private readonly parallel = 2,
    private readonly onUploaded?: (bytes: number) => void,
    /** Told when the target pack size changes (the readers build data packs themselves). */
    private readonly onTarget?: (bytes: number) => void,
  ) {}

  /** Throws the first upload failure, if any. */
  check(): void {
    if (this.failure) throw this.failure;
  }

  /**
   * Uploads a pack built elsewhere (a reader's data pack) once a slot is free; settles when it is
   * stored. A failure is kept and thrown by the next add() or finish().
   */
  async upload(id: string, bytes: Buffer): Promise<void> {
    while (this.inFlight.size >= this.parallel) await Promise.race(this.inFlight);
    const upload = this.send(id, bytes).finally(() => this.inFlight.delete(upload));
    this.inFlight.add(upload);
    await upload;
  }

  /**
   * Trees go into packs of their own (as in restic): reading a snapshot's trees back is then a few
   * ranged GETs of tree packs, not one small request per folder between the data blobs.
   */
  async add(id: string, type: BlobType, stored: Buffer, plainLength: number): Promise<void> {
    if (this.failure) throw this.failure;
    if (!this.builders[type].canAdd(stored.length)) await this.flush(type);
    this.builders[type].add(id, type, stored, plainLength);
    if (this.builders[type].size >= this.target) await this.flush(type);
  }

  /** Uploads what is pending and waits for every upload. */
  async finish(): Promise<void> {
    await this.flush('data');
    await this.flush('tree');
    await Promise.all(this.inFlight);
    if (this.failure) throw this.failure;
  }

  /** Waits for the uploads already started (after a cancel), dropping the unfinished packs. */
  async drain(): Promise<void> {
    this.builders = { data: new PackBuilder(), tree: new PackBuilder() };
    await Promise.allSettled(this.inFlight);
  }

  private async flush(type: BlobType): Promise<void> {
    if (this.builders[type].count === 0) return;
    const { id, bytes } = this.builders[type].finish();
    this.builders[type] = new PackBuilder();
    while (this.inFlight.size >= this.parallel) await Promise.race(this.inFlight);
    if (this.failure) throw this.failure;
    const upload = this.send(id, bytes).finally(() => this.inFlight.delete(upload));
    this.inFlight.add(upload);
  }

  private async send(id: string, bytes: Buffer): Promise<void> {
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
    const target = packSizeFor(this.rate);
    if (target !== this.target) this.onTarget?.(target);
    this.target = target;
    this.uploadedBytes += bytes.length;
    this.uploadedPacks++;
    this.onUploaded?.(bytes.length);
  }
}
