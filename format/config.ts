import { z } from 'zod';
import { jsonBytes } from './json.js';
import { decodeJson, isoTime, validate } from './schema.js';

/**
 * FastCDC parameters; every agent of a repository chunks with the same ones (README, "Repository
 * config"). Sizes in bytes. `normalization` is FastCDC's normalization level: 0 cuts with one mask
 * past `min`, 1 to 3 use a stricter mask up to `avg` and a looser one after it. Absent means 2, the
 * rule of the repositories made before the field existed.
 */
export interface ChunkerParams {
  min: number;
  avg: number;
  max: number;
  normalization?: number;
}

/** The repository config stored at /.kura/config (README, "Repository config"). */
export interface RepoConfig {
  encrypted: boolean;
  created: string;
  chunker: ChunkerParams;
  /**
   * Version 2 and later: an encrypted blob's box takes its id as associated data (README, "Blobs"),
   * so opening it proves it is that blob. Version 1 repositories seal without it.
   */
  boundIds: boolean;
}

/** The config version written for new repositories. */
export const CONFIG_VERSION = 2;

const KiB = 1024;
const MiB = 1024 * KiB;

/**
 * The chunker of new repositories: half-MiB blobs (0.49 MiB on the benchmark's large files), so a
 * 1 MiB insertion stores 1.73 MiB of new chunks on average, not the 2.36 MiB of 0.88 MiB blobs; still
 * big enough to index cheaply. One cut mask (normalization 0), which finds its old cuts again soonest
 * after an insertion (README, "Repository config"). Repositories keep the chunker their config names.
 */
export const DEFAULT_CHUNKER: Readonly<ChunkerParams> = Object.freeze({
  min: 256 * KiB,
  avg: 512 * KiB,
  max: 4 * MiB,
  normalization: 0,
});

const ChunkerSchema = z
  .strictObject({
    min: z.number().int().min(64),
    avg: z.number().int(),
    max: z
      .number()
      .int()
      .max(16 * MiB),
    normalization: z.number().int().min(0).max(3).optional(),
  })
  .refine((c) => c.min < c.avg && c.avg < c.max, 'needs min < avg < max');

const ConfigSchema = z.strictObject({
  kura: z.literal('config'),
  version: z.union([z.literal(1), z.literal(2)]),
  encrypted: z.boolean(),
  created: isoTime,
  chunker: ChunkerSchema,
});

/**
 * The config's bytes. `created` defaults to now and `chunker` to DEFAULT_CHUNKER, so creating a
 * repository needs only the choice of encryption. Throws FormatError('bad-record') on bad values.
 */
export function encodeConfig(config: { encrypted: boolean; created?: string; chunker?: ChunkerParams }): Buffer {
  const chunker = config.chunker ?? DEFAULT_CHUNKER;
  const record = {
    kura: 'config',
    version: CONFIG_VERSION,
    encrypted: config.encrypted,
    created: config.created ?? new Date().toISOString(),
    chunker: { min: chunker.min, avg: chunker.avg, max: chunker.max, normalization: chunker.normalization },
  };
  validate(ConfigSchema, record, 'bad-record', 'the repository config');
  return jsonBytes(record);
}

/** Reads /.kura/config; throws FormatError('bad-record') when it is not a version 1 or 2 config. */
export function decodeConfig(bytes: Uint8Array): RepoConfig {
  const record = decodeJson(ConfigSchema, bytes, 'bad-record', 'the repository config');
  return { encrypted: record.encrypted, created: record.created, chunker: record.chunker, boundIds: record.version >= 2 };
}
