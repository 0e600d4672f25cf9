import type { SnapshotRef, SnapshotSource } from '../browse/source.js';
import type { BlobLocation, Repository } from './repository.js';
import { BlobReader } from './trees.js';

/** How long a listing of the snapshots (and the index read with it) is reused before asking again. */
const FRESH_MS = 15_000;

interface State {
  at: number;
  refs: SnapshotRef[];
  index: Map<string, BlobLocation>;
  reader: BlobReader;
}

/**
 * The user's snapshots through the gateway, decrypted here with the key the repository was opened
 * with (for `kura mount`). The snapshot records and the blob index are fetched together and reused
 * for FRESH_MS, so a file manager's bursts of PROPFINDs cost the gateway one listing; blobs are
 * fetched by ranged GETs and verified (BlobReader).
 */
export class RemoteSnapshotSource implements SnapshotSource {
  private state: State | null = null;
  private refreshing: Promise<State> | null = null;

  constructor(private readonly repo: Repository) {}

  async snapshots(): Promise<SnapshotRef[]> {
    return (await this.current()).refs;
  }

  async plainLength(id: string): Promise<number | undefined> {
    return (await this.current()).index.get(id)?.plainLength;
  }

  async read(id: string): Promise<Buffer> {
    return (await this.current()).reader.read(id);
  }

  private async current(): Promise<State> {
    if (this.state && Date.now() - this.state.at < FRESH_MS) return this.state;
    this.refreshing ??= this.load().finally(() => (this.refreshing = null));
    return this.refreshing;
  }

  private async load(): Promise<State> {
    const [snapshots, index] = await Promise.all([this.repo.snapshots(), this.repo.index()]);
    const refs = snapshots.map((s) => ({ id: s.id, host: s.host, time: s.time, tree: this.treeOf(s) }));
    this.state = { at: Date.now(), refs, index, reader: new BlobReader(this.repo.remote, index, this.repo.codec) };
    return this.state;
  }

  /** The snapshot's root tree; null when its body does not open (another key): it then shows as a notice. */
  private treeOf(snapshot: Parameters<Repository['body']>[0]): string | null {
    try {
      return this.repo.body(snapshot).tree;
    } catch {
      return null;
    }
  }
}
