/**
 * What the snapshot view needs from a repository, and nothing more (STYLE.md: callers name the
 * narrow interface). The gateway implements it over its own disk for plaintext repositories
 * (gateway/storage/snapshot-source.ts); `kura mount` over the gateway with the user's key
 * (agent/mount-source.ts).
 */

/** One snapshot as the view lists it. */
export interface SnapshotRef {
  id: string;
  host: string;
  /** ISO-8601 UTC, as the record's envelope holds it. */
  time: string;
  /** The root tree's blob id; null when this source cannot read the body (encrypted, no key here). */
  tree: string | null;
}

export interface SnapshotSource {
  /** Every snapshot, any order. Called for each listing of /snapshots/ and below: keep it cheap. */
  snapshots(): Promise<SnapshotRef[]>;
  /** A blob's plaintext length from the index, or undefined when the repository does not hold it. */
  plainLength(id: string): Promise<number | undefined>;
  /**
   * A blob's verified plaintext (decrypted and checked against its id). Throws when the blob is
   * missing or damaged; the message names the blob.
   */
  read(id: string): Promise<Buffer>;
}
