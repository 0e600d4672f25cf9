import zstd from 'zstd-napi/binding.js';
import { FormatError } from './errors.js';

/**
 * zstd for blob payloads (README, "Blobs"): level 1 where a cheap trial says it pays, and a
 * decompressor that never allocates more than the caller allows. zlib is never used here: zstd is
 * several times faster at a better ratio, and the blob path must keep up with disks and links.
 */

const LEVEL = 1;
/** Below this, a zstd frame's own header eats most of any gain. */
const MIN_SIZE = 128;
const SAMPLE_SIZE = 16 * 1024;
/**
 * Samples tried in a blob over SAMPLES × SAMPLE_SIZE bytes, spread evenly from its first to its
 * last 16 KiB. A chunk of a big file is often part random, part text: one sample at its start would
 * store it raw whenever it starts in the random part (measured on the benchmark data set: 11 % more
 * bytes stored for its large files than with every chunk compressed).
 */
const SAMPLES = 4;
/** Compression is kept only when it saves at least 10 %. */
const WORTH = 0.9;
/** Standard zstd frame magic 0xFD2FB528, little-endian on disk. */
const FRAME_MAGIC = 0xfd2fb528;

// One context per thread, used synchronously; frames are written into a reused scratch buffer and
// copied out once, so compressing a chunk allocates only its result.
const cctx = new zstd.CCtx();
cctx.setParameter(zstd.CParameter.compressionLevel, LEVEL);
cctx.setParameter(zstd.CParameter.contentSizeFlag, 1);
cctx.setParameter(zstd.CParameter.checksumFlag, 0);
let scratch = Buffer.allocUnsafeSlow(0);
// Decompression is synchronous, so one context serves every call on this thread.
const dctx = new zstd.DCtx();

/** The zstd frame of plain when it is at most 90 % of plain's size, else null (store raw). */
export function compressIfWorthIt(plain: Buffer): Buffer | null {
  const frame = compressInScratch(plain);
  return frame ? Buffer.from(frame) : null;
}

/**
 * compressIfWorthIt without the copy: the frame is a view of this thread's scratch buffer, valid
 * only until the next compression on the thread. For callers that consume it at once.
 */
export function compressInScratch(plain: Buffer): Buffer | null {
  if (plain.length < MIN_SIZE) return null;
  if (!anySamplePays(plain)) return null;
  const length = compressInto(plain);
  return length <= plain.length * WORTH ? scratch.subarray(0, length) : null;
}

/**
 * Whether some part of plain looks compressible: true for a blob of at most SAMPLES × 16 KiB (it
 * is tried whole), else whether any of SAMPLES 16 KiB samples, spread from its start to its end,
 * shrinks to ≤ 90 %. Data that does not compress (media, archives, encrypted files) costs these
 * trials only, about 64 KiB of zstd per blob.
 *
 * Up to 64 KiB the samples would cover about the whole blob, so a blob that does not compress costs
 * the same either way, and one that does would pay for its first sample twice: on the benchmark's
 * small text files (1 to 64 KiB) that was 16 KiB more zstd for three files in four.
 */
function anySamplePays(plain: Buffer): boolean {
  if (plain.length <= SAMPLES * SAMPLE_SIZE) return true;
  const last = plain.length - SAMPLE_SIZE;
  for (let k = 0; k < SAMPLES; k++) {
    const at = Math.floor((last * k) / (SAMPLES - 1));
    if (compressInto(plain.subarray(at, at + SAMPLE_SIZE)) <= SAMPLE_SIZE * WORTH) return true;
  }
  return false;
}

/** Compresses into the scratch buffer (grown as needed); returns the frame's length. */
function compressInto(plain: Buffer): number {
  const bound = zstd.compressBound(plain.length);
  if (scratch.length < bound) scratch = Buffer.allocUnsafeSlow(Math.max(bound, 1 << 20));
  return cctx.compress2(scratch, plain);
}

/** Where transient decompressions go (see decompressFrame). */
let plainScratch = Buffer.alloc(0);

/**
 * The content of one standard zstd frame. Refuses (FormatError 'bad-blob', naming `what`) anything
 * else: other frame kinds, dictionaries, trailing bytes, an undeclared content size, or a declared
 * size above maxSize or different from expectedSize, so that a tiny hostile frame cannot make a
 * reader allocate without bound. With `transient`, the content is in a buffer that the next
 * transient call on this thread overwrites.
 */
export function decompressFrame(frame: Buffer, what: string, maxSize: number, expectedSize?: number, transient = false): Buffer {
  const refuse = (why: string) => new FormatError('bad-blob', `${what}: ${why}`);
  if (frame.length < 4 || frame.readUInt32LE(0) !== FRAME_MAGIC) throw refuse('the compressed payload is not a zstd frame');
  const size = frameHeader(frame, refuse);
  if (size > maxSize) throw refuse(`the compressed payload declares ${size} bytes, more than the ${maxSize} allowed`);
  if (expectedSize !== undefined && size !== expectedSize) {
    throw refuse(`the compressed payload declares ${size} bytes where ${expectedSize} were expected`);
  }
  // transient: into a buffer reused by the next transient call on this thread (no fresh memory to fault in).
  if (transient && plainScratch.length < size) plainScratch = Buffer.allocUnsafeSlow(Math.max(size, 1 << 20));
  const out = transient ? plainScratch.subarray(0, size) : Buffer.allocUnsafe(size);
  let written: number;
  try {
    written = dctx.decompress(out, frame);
  } catch (err) {
    throw refuse(`the compressed payload is damaged (${(err as Error).message})`);
  }
  if (written !== size) throw refuse(`the compressed payload holds ${written} bytes, not the ${size} it declares`);
  return out;
}

/** The declared content size of a lone, dictionary-free frame. */
function frameHeader(frame: Buffer, refuse: (why: string) => FormatError): number {
  let size: number | null;
  let frameLength: number;
  try {
    size = zstd.getFrameContentSize(frame);
    frameLength = zstd.findFrameCompressedSize(frame);
  } catch (err) {
    throw refuse(`the compressed payload is damaged (${(err as Error).message})`);
  }
  if (size === null) throw refuse('the compressed payload does not declare its size');
  if (frameLength !== frame.length) throw refuse('the compressed payload has bytes after its zstd frame');
  if (zstd.getDictIDFromFrame(frame) !== 0) throw refuse('the compressed payload needs a zstd dictionary');
  return size;
}
