/** The public API of the backup format (README.md beside this file describes every byte). */
export { FormatError, isFormatError, type FormatErrorCode } from './errors.js';
export { generateKeys, encodeKeyFile, decodeKeyFile, wrapKeys, unwrapKeys, keyRecordId, type MasterKeys } from './keys.js';
export { CONFIG_VERSION, DEFAULT_CHUNKER, encodeConfig, decodeConfig, type ChunkerParams, type RepoConfig } from './config.js';
export { BlobCodec, verifyPlainBlob, MAX_BLOB_SIZE, type BlobType, type CodecSpec } from './blob.js';
export {
  PackBuilder,
  readPackTrailer,
  parsePack,
  packIdOf,
  PackWriter,
  MAX_PACK_SIZE,
  MAX_PACK_ENTRIES,
  MAX_TRAILER_SIZE,
  PACK_HEADER_SIZE,
  type PackEntry,
} from './pack.js';
export { encodeTree, decodeTree, MAX_TREE_ENTRIES, type TreeEntry, type TreeEntryType } from './tree.js';
export {
  encodeSnapshot,
  decodeSnapshotEnvelope,
  decodeSnapshotBody,
  snapshotIdOf,
  isValidHost,
  type SnapshotMeta,
  type SnapshotBody,
  type SnapshotTotals,
  type SnapshotEnvelope,
  type SnapshotType,
} from './snapshot.js';
export { encodeIndex, decodeIndex, INDEX_EPOCH, blobTypeToCode, blobTypeFromCode, type IndexEntry, type IndexPage } from './index-entry.js';
export {
  encodeJob,
  decodeJob,
  shownState,
  mayReplace,
  BACKUP_JOB_TYPES,
  JOB_ID,
  JOB_STALE_MS,
  type JobRecord,
  type JobState,
} from './job-log.js';
