/**
 * Reserves space before bytes are stored and gives it back when they are not.
 * reserve() throws KuraError('quota-exceeded') when the bytes do not fit; release() never throws.
 */
export interface SpaceGuard {
  reserve(bytes: number): Promise<void>;
  release(bytes: number): Promise<void>;
}

const BLOCK = 4 << 20;

/**
 * Counts one upload's bytes against a SpaceGuard as they arrive. The size of the file being replaced
 * is credited first (the new version takes its place, so a user near the quota can still update a
 * big file), and space beyond it is reserved ahead in 4 MiB blocks, so a long chunked upload costs
 * a metadata update per block rather than per network packet. take() throws quota-exceeded.
 */
export class SpaceMeter {
  private ahead = 0;
  private charged = 0;

  constructor(
    private readonly guard: SpaceGuard,
    private credit: number,
  ) {}

  async take(bytes: number): Promise<void> {
    const free = Math.min(this.credit, bytes);
    this.credit -= free;
    let needed = bytes - free;
    if (needed <= this.ahead) {
      this.ahead -= needed;
      return;
    }
    needed -= this.ahead;
    this.ahead = 0;
    const block = Math.max(needed, BLOCK);
    try {
      await this.guard.reserve(block);
    } catch (err) {
      if (block === needed) throw err;
      return this.reserveExactly(needed);
    }
    this.charged += block;
    this.ahead = block - needed;
  }

  /** After the new version is in place: gives back the unused blocks and the replaced bytes not reused. */
  async settle(): Promise<void> {
    const back = this.ahead + this.credit;
    this.ahead = 0;
    this.credit = 0;
    await this.guard.release(back);
  }

  /** After a failed upload: gives back everything reserved; the old version and its count stay. */
  async cancel(): Promise<void> {
    const back = this.charged;
    this.charged = 0;
    this.ahead = 0;
    await this.guard.release(back);
  }

  private async reserveExactly(bytes: number): Promise<void> {
    await this.guard.reserve(bytes);
    this.charged += bytes;
  }
}
