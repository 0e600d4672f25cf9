/**
 * FastCDC content-defined chunking (Xia et al., USENIX ATC 2016 / IEEE TPDS 2020): files are cut
 * where the content says so, so an insertion in the middle of a big file changes one or two chunks
 * and every other chunk keeps its bytes (and its blob id).
 *
 * The algorithm, per chunk: skip the first `min` bytes without hashing; roll a 32-bit gear hash
 * `h = (h << 1) + GEAR[byte]` over the following bytes; cut after the first byte where the hash's
 * top bits are all zero; a chunk never exceeds `max`.
 * - Normalization level 0 (new repositories) uses one mask of log2(avg - min) bits, so chunks
 *   average `avg`. With the defaults (256 KiB, 512 KiB, 4 MiB) they average 0.49 MiB on the
 *   benchmark's large files.
 * - Levels 1 to 3 (level 2 in repositories made before the config named a level) use a strict mask
 *   of log2(avg) + level bits up to `avg` bytes and a loose one of log2(avg) - level bits after it,
 *   which narrows the spread of chunk sizes around `avg`. But after an insertion a chunk starts
 *   elsewhere, and an old cut made under the loose mask no longer qualifies under the strict one: a
 *   1 MiB insertion into the benchmark's large files made 3.49 MiB of new chunks on average at
 *   level 2 (256 KiB, 1 MiB, 4 MiB; 1.14 MiB chunks), 2.36 MiB at level 0 with 384 KiB, 896 KiB,
 *   4 MiB (0.88 MiB chunks) and 1.73 MiB with the defaults, over 600 insertions
 *   (bench/chunk-insertions.ts).
 *
 * The gear table, the masks and the cut rule are part of the backup format: changing any of them
 * changes every chunk boundary (the golden test in test/unit/agent-chunker.test.ts pins them).
 *
 * Two scan kernels give identical boundaries: a small WebAssembly loop (the default, about twice as
 * fast as the best JavaScript loop we found, see bench/chunker.ts) and the same loop in TypeScript,
 * kept as the readable reference that the tests compare the wasm kernel against.
 */
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { DEFAULT_CHUNKER, type ChunkerParams } from '../format/index.js';

/**
 * min: smallest chunk (except a file's last), whose bytes are never hashed; avg: target size, which
 * sets the mask widths; max: a cut is forced here; normalization: the level (see above). The type is
 * the format's: the parameters are fixed per repository in its config.
 */
export type { ChunkerParams };

const KIB = 1024;
const MIB = 1024 * KIB;

/** The parameters of new repositories (the format's). */
export { DEFAULT_CHUNKER };

/** Which scan loop runs: both cut at the same places; 'js' exists for tests and the benchmark. */
export type GearKernel = 'wasm' | 'js';

export interface ChunkOptions {
  kernel?: GearKernel;
}

/** The normalization level of a config without one (the repositories made before the field). */
const LEGACY_NORMALIZATION = 2;
/** Bytes handed to a kernel per call; a cut wastes at most this much copying. */
const BLOCK = 64 * KIB;
/** Pieces smaller than this are gathered before chunking, so 1-byte writes cost no more than big ones. */
const GATHER = 64 * KIB;
/**
 * Read size of chunkFile. A chunk that spans two reads is copied into a buffer of its own; with
 * 8 MiB reads that is one chunk in seven, and chunking runs about 30 % faster than with 4 MiB.
 */
export const FILE_READ_SIZE = 8 * MIB;
/** Read size past the end that stat reported: finding EOF must not cost an 8 MiB buffer per file. */
const GROWTH_PROBE = 64 * KIB;

/**
 * The gear table: 256 pseudo-random 32-bit values, fixed forever. They are the first 1024 bytes of
 * SHAKE256("kura fastcdc gear table v1") read as big-endian int32, which any SHAKE256 reproduces:
 *   python3 -c "import hashlib; print(hashlib.shake_256(b'kura fastcdc gear table v1').hexdigest(1024))"
 */
const GEAR: Int32Array = makeGearTable('kura fastcdc gear table v1');

function makeGearTable(seed: string): Int32Array {
  const bytes = createHash('shake256', { outputLength: 1024 }).update(seed, 'ascii').digest();
  const table = new Int32Array(256);
  for (let i = 0; i < 256; i++) table[i] = bytes.readInt32BE(4 * i);
  return table;
}

/** A mask of the `bits` highest bits: in a gear hash they depend on the most bytes (up to 32). */
const topBits = (bits: number): number => (~0 << (32 - bits)) | 0;

interface Masks {
  strict: number;
  loose: number;
}

/** Checks the params and derives the masks; a RangeError names the bad value. */
function prepare(params: ChunkerParams): Masks {
  const { min, avg, max } = params;
  for (const [name, value] of Object.entries({ min, avg, max })) {
    if (!Number.isSafeInteger(value)) throw new RangeError(`chunker ${name} must be an integer, got ${value}`);
  }
  if (min < 64 || min > avg || avg > max || max > 1024 * MIB) {
    throw new RangeError(`chunker sizes must satisfy 64 <= min <= avg <= max <= 1 GiB, got ${min}/${avg}/${max}`);
  }
  const level = params.normalization ?? LEGACY_NORMALIZATION;
  if (!Number.isInteger(level) || level < 0 || level > 3) throw new RangeError(`chunker normalization must be 0, 1, 2 or 3, got ${level}`);
  if (level === 0) {
    // One mask past min: a cut every 2^bits bytes on average, so chunks average min + 2^bits = avg.
    const bits = Math.round(Math.log2(avg - min));
    if (!(bits >= 8 && bits <= 28)) throw new RangeError(`chunker avg - min must be between 256 B and 256 MiB, got ${avg - min}`);
    return { strict: topBits(bits), loose: topBits(bits) };
  }
  const bits = Math.round(Math.log2(avg));
  if (bits < 8 || bits > 28) throw new RangeError(`chunker avg must be between 256 B and 256 MiB, got ${avg}`);
  return { strict: topBits(bits + level), loose: topBits(bits - level) };
}

/** A gear-hash scan loop working on its own block of memory. */
interface GearScanner {
  /** Where the caller puts the next bytes to scan (BLOCK bytes long). */
  readonly block: Uint8Array;
  /** Starts a new chunk: the hash goes back to 0. */
  reset(): void;
  /**
   * Rolls the hash over block[0, length). Returns the index just past the first byte after which
   * `hash & mask` is 0, or -1 when there is none (the hash then carries over to the next call).
   */
  scan(length: number, mask: number): number;
}

/**
 * The reference kernel, unrolled by four (V8 runs that about twice as fast as the plain loop). The
 * hash lives in a local during the loop: a captured variable would be stored to memory every byte.
 */
function createJsScanner(): GearScanner {
  const block = new Uint8Array(BLOCK);
  let carried = 0;
  const scan = (length: number, mask: number): number => {
    const gear = GEAR;
    let h = carried;
    let i = 0;
    for (const end4 = length - 3; i < end4; i += 4) {
      h = ((h << 1) + gear[block[i]!]!) | 0;
      if ((h & mask) === 0) return i + 1;
      h = ((h << 1) + gear[block[i + 1]!]!) | 0;
      if ((h & mask) === 0) return i + 2;
      h = ((h << 1) + gear[block[i + 2]!]!) | 0;
      if ((h & mask) === 0) return i + 3;
      h = ((h << 1) + gear[block[i + 3]!]!) | 0;
      if ((h & mask) === 0) return i + 4;
    }
    for (; i < length; i++) {
      h = ((h << 1) + gear[block[i]!]!) | 0;
      if ((h & mask) === 0) return i + 1;
    }
    carried = h;
    return -1;
  };
  return { block, reset: () => (carried = 0), scan };
}

// ---- The wasm kernel ------------------------------------------------------------------------------

/** Memory layout of the wasm kernel: the gear table (little-endian int32) at 0, the block after it. */
const WASM_BLOCK_AT = 1024;
const WASM_UNROLL = 8;

/** The WebAssembly opcodes the kernel uses (names as in the text format). */
const OP = {
  block: 0x02,
  loop: 0x03,
  if: 0x04,
  end: 0x0b,
  br: 0x0c,
  brIf: 0x0d,
  return: 0x0f,
  localGet: 0x20,
  localSet: 0x21,
  globalGet: 0x23,
  globalSet: 0x24,
  i32Load: 0x28,
  i32Load8U: 0x2d,
  i32Const: 0x41,
  i32Eqz: 0x45,
  i32GtU: 0x4b,
  i32GeU: 0x4f,
  i32Add: 0x6a,
  i32And: 0x71,
  i32Shl: 0x74,
} as const;
const I32 = 0x7f;
const VOID = 0x40;

const uleb = (n: number): number[] => {
  const out: number[] = [];
  do {
    const byte = n & 0x7f;
    n >>>= 7;
    out.push(n ? byte | 0x80 : byte);
  } while (n);
  return out;
};
const sleb = (n: number): number[] => {
  const out: number[] = [];
  for (;;) {
    const byte = n & 0x7f;
    n >>= 7;
    if ((n === 0 && !(byte & 0x40)) || (n === -1 && byte & 0x40)) return [...out, byte];
    out.push(byte | 0x80);
  }
};
const section = (id: number, body: number[]): number[] => [id, ...uleb(body.length), ...body];
const name = (s: string): number[] => [...uleb(s.length), ...Buffer.from(s, 'ascii')];

/**
 * Assembles the scan kernel; in the text format it reads:
 *
 *   (module
 *     (import "kura" "memory" (memory 1))
 *     (global $hash (export "h") (mut i32) (i32.const 0))
 *     (func (export "scan") (param $i i32) (param $end i32) (param $mask i32) (result i32)
 *       (local $h i32)
 *       (local.set $h (global.get $hash))
 *       (block (loop                                   ;; 8 bytes per turn while i + 8 <= end
 *         (br_if 1 (i32.gt_u (i32.add (local.get $i) (i32.const 8)) (local.get $end)))
 *         ;; for k = 0..7:
 *         (local.set $h (i32.add (i32.shl (local.get $h) (i32.const 1))
 *                                (i32.load (i32.shl (i32.load8_u offset=k (local.get $i)) (i32.const 2)))))
 *         (if (i32.eqz (i32.and (local.get $h) (local.get $mask)))
 *           (then (return (i32.add (local.get $i) (i32.const k+1)))))
 *         ;; end for
 *         (local.set $i (i32.add (local.get $i) (i32.const 8)))
 *         (br 0)))
 *       (block (loop                                   ;; then byte by byte (k = 0 above)
 *         (br_if 1 (i32.ge_u (local.get $i) (local.get $end)))
 *         ...step and check for k = 0...
 *         (local.set $i (i32.add (local.get $i) (i32.const 1)))
 *         (br 0)))
 *       (global.set $hash (local.get $h))
 *       (i32.const -1)))
 */
function assembleScanKernel(): Uint8Array<ArrayBuffer> {
  const [I, END, MASK, H] = [0, 1, 2, 3];
  const get = (local: number) => [OP.localGet, local];
  const set = (local: number) => [OP.localSet, local];
  const i32 = (value: number) => [OP.i32Const, ...sleb(value)];
  const advance = (n: number) => [...get(I), ...i32(n), OP.i32Add, ...set(I)];
  const step = (k: number) => [
    ...[...get(H), ...i32(1), OP.i32Shl],
    ...[...get(I), OP.i32Load8U, 0, ...uleb(k), ...i32(2), OP.i32Shl, OP.i32Load, 2, 0],
    ...[OP.i32Add, ...set(H)],
  ];
  const check = (k: number) => [
    ...[...get(H), ...get(MASK), OP.i32And, OP.i32Eqz, OP.if, VOID],
    ...[...get(I), ...i32(k + 1), OP.i32Add, OP.return, OP.end],
  ];
  const unrolled = Array.from({ length: WASM_UNROLL }, (_, k) => [...step(k), ...check(k)]).flat();
  const body = [
    ...[1, 1, I32], // locals: one i32 ($h)
    ...[OP.globalGet, 0, ...set(H)],
    ...[OP.block, VOID, OP.loop, VOID, ...get(I), ...i32(WASM_UNROLL), OP.i32Add, ...get(END), OP.i32GtU, OP.brIf, 1],
    ...[...unrolled, ...advance(WASM_UNROLL), OP.br, 0, OP.end, OP.end],
    ...[OP.block, VOID, OP.loop, VOID, ...get(I), ...get(END), OP.i32GeU, OP.brIf, 1],
    ...[...step(0), ...check(0), ...advance(1), OP.br, 0, OP.end, OP.end],
    ...[...get(H), OP.globalSet, 0, ...i32(-1), OP.end],
  ];
  return Uint8Array.from([
    ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00], // "\0asm", version 1
    ...section(1, [1, 0x60, 3, I32, I32, I32, 1, I32]), // type 0: (i32 i32 i32) -> i32
    ...section(2, [1, ...name('kura'), ...name('memory'), 0x02, 0x00, 1]), // memory, min 1 page
    ...section(3, [1, 0]), // function 0 has type 0
    ...section(6, [1, I32, 1, ...i32(0), OP.end]), // global 0: mut i32 = 0
    ...section(7, [2, ...name('scan'), 0x00, 0, ...name('h'), 0x03, 0]),
    ...section(10, [1, ...uleb(body.length), ...body]),
  ]);
}

type ScanExport = (start: number, end: number, mask: number) => number;

function createWasmScanner(): GearScanner {
  const memory = new WebAssembly.Memory({ initial: Math.ceil((WASM_BLOCK_AT + BLOCK) / 65536) });
  const view = new DataView(memory.buffer);
  GEAR.forEach((value, i) => view.setInt32(4 * i, value, true));
  const { exports } = new WebAssembly.Instance(new WebAssembly.Module(assembleScanKernel()), { kura: { memory } });
  const { scan, h } = exports;
  if (typeof scan !== 'function' || !(h instanceof WebAssembly.Global)) throw new Error('chunker: wasm kernel lacks its exports');
  const scanAt = scan as ScanExport;
  return {
    block: new Uint8Array(memory.buffer, WASM_BLOCK_AT, BLOCK),
    reset: () => (h.value = 0),
    scan: (length, mask) => {
      const hit = scanAt(WASM_BLOCK_AT, WASM_BLOCK_AT + length, mask);
      return hit < 0 ? -1 : hit - WASM_BLOCK_AT;
    },
  };
}

// One scanner per kind for the whole process: a cut is found synchronously, so concurrent chunk
// streams never see each other's bytes in the shared block.
const scanners: Partial<Record<GearKernel, GearScanner>> = {};
const scannerFor = (kernel: GearKernel): GearScanner => (scanners[kernel] ??= kernel === 'wasm' ? createWasmScanner() : createJsScanner());

// ---- Cutting ----------------------------------------------------------------------------------------

/**
 * Bytes received but not yet cut, kept as the source's own buffers: a chunk inside one buffer is a
 * view of it, and only a chunk spanning two is copied. Small pieces are gathered into one buffer.
 */
class PendingBytes {
  length = 0;
  private segments: Buffer[] = [];
  private head = 0;
  private gathered: Buffer[] = [];
  private gatheredBytes = 0;

  push(piece: Uint8Array): void {
    if (piece.length === 0) return;
    const buf = Buffer.isBuffer(piece) ? piece : Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength);
    this.length += buf.length;
    if (buf.length >= GATHER && this.gatheredBytes === 0) return void this.segments.push(buf);
    this.gathered.push(buf);
    this.gatheredBytes += buf.length;
    if (this.gatheredBytes >= GATHER) this.flush();
  }

  /** Copies bytes [from, from + length) into `dest` at 0. */
  copyTo(dest: Uint8Array, from: number, length: number): void {
    this.flush();
    let skip = from + this.head;
    let at = 0;
    for (const seg of this.segments) {
      if (at === length) return;
      if (skip >= seg.length) {
        skip -= seg.length;
        continue;
      }
      const n = Math.min(length - at, seg.length - skip);
      dest.set(seg.subarray(skip, skip + n), at);
      at += n;
      skip = 0;
    }
  }

  /** Removes the first `n` bytes and returns them. */
  take(n: number): Buffer {
    this.flush();
    const parts: Buffer[] = [];
    let left = n;
    while (left > 0) {
      const seg = this.segments[0]!;
      const end = Math.min(seg.length, this.head + left);
      parts.push(seg.subarray(this.head, end));
      left -= end - this.head;
      this.head = end;
      if (end === seg.length) {
        this.segments.shift();
        this.head = 0;
      }
    }
    this.length -= n;
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts, n);
  }

  private flush(): void {
    if (this.gatheredBytes === 0) return;
    this.segments.push(this.gathered.length === 1 ? this.gathered[0]! : Buffer.concat(this.gathered, this.gatheredBytes));
    this.gathered = [];
    this.gatheredBytes = 0;
  }
}

/** Finds where the chunk at the head of `pending` ends, given at least `max` bytes or all of the input. */
function findCut(pending: PendingBytes, params: ChunkerParams, masks: Masks, scanner: GearScanner): number {
  const available = pending.length;
  if (available <= params.min) return available;
  const end = Math.min(available, params.max);
  const normal = Math.min(end, params.avg);
  scanner.reset();
  for (let pos = params.min; pos < end;) {
    const strict = pos < normal;
    const length = Math.min(BLOCK, (strict ? normal : end) - pos);
    pending.copyTo(scanner.block, pos, length);
    const hit = scanner.scan(length, strict ? masks.strict : masks.loose);
    if (hit >= 0) return pos + hit;
    pos += length;
  }
  return end;
}

type Cutter = (pending: PendingBytes) => number;

function createCutter(params: ChunkerParams, options: ChunkOptions): Cutter {
  const masks = prepare(params);
  const scanner = scannerFor(options.kernel ?? 'wasm');
  return (pending) => findCut(pending, params, masks, scanner);
}

/**
 * Cuts a stream into chunks. Concatenated, the chunks are the input; each is between `min` and
 * `max` bytes except the last, which may be shorter; an empty input gives no chunk. The boundaries
 * depend only on the bytes, never on how the source splits them. At most about `max` bytes plus
 * one source piece are held. A chunk may be a view of a source buffer, so a source must not reuse
 * a buffer it has yielded (Node's streams never do); copy a chunk if you keep it for long.
 * Throws RangeError for bad params, and whatever the source throws.
 */
export async function* chunkStream(
  source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  params: ChunkerParams = DEFAULT_CHUNKER,
  options: ChunkOptions = {},
): AsyncGenerator<Buffer> {
  const cut = createCutter(params, options);
  const pending = new PendingBytes();
  for await (const piece of source) {
    pending.push(piece);
    while (pending.length >= params.max) yield pending.take(cut(pending));
  }
  while (pending.length > 0) yield pending.take(cut(pending));
}

/** Cuts a buffer held in memory, with the same boundaries as chunkStream; the chunks are views of `buf`. */
export function chunkBuffer(buf: Uint8Array, params: ChunkerParams = DEFAULT_CHUNKER, options: ChunkOptions = {}): Buffer[] {
  return [...chunkSync([buf], params, options)];
}

/**
 * chunkStream for a source read synchronously (a worker thread reading a file with readSync): the
 * same boundaries, and the same rule that a source must not reuse a buffer while chunks of it are
 * pending. A piece of at least `max` bytes leaves nothing of the previous piece pending, so a reader
 * may alternate two buffers of that size once it has used the chunks cut so far.
 */
export function* chunkSync(
  source: Iterable<Uint8Array>,
  params: ChunkerParams = DEFAULT_CHUNKER,
  options: ChunkOptions = {},
): Generator<Buffer> {
  const cut = createCutter(params, options);
  const pending = new PendingBytes();
  for (const piece of source) {
    pending.push(piece);
    while (pending.length >= params.max) yield pending.take(cut(pending));
  }
  while (pending.length > 0) yield pending.take(cut(pending));
}

/**
 * Reads a file and cuts it (see chunkStream). Reads go straight from a FileHandle into fresh 8 MiB
 * buffers (like a read stream with an 8 MiB highWaterMark, minus the stream machinery); a file
 * smaller than that is read into a buffer of its own size, so its chunk holds no spare memory.
 * Memory: at most `max` bytes pending plus one read.
 * Throws the fs error when the file cannot be opened or read.
 */
export async function* chunkFile(
  path: string,
  params: ChunkerParams = DEFAULT_CHUNKER,
  options: ChunkOptions = {},
): AsyncGenerator<Buffer> {
  yield* chunkStream(readFilePieces(path), params, options);
}

/** Reads the size stat gives in FILE_READ_SIZE pieces, then probes in small reads in case the file grew. */
async function* readFilePieces(path: string): AsyncGenerator<Buffer> {
  const file = await open(path, 'r');
  try {
    const { size } = await file.stat();
    for (let total = 0; ;) {
      const readSize = total < size ? Math.min(FILE_READ_SIZE, size - total) : GROWTH_PROBE;
      const buf = Buffer.allocUnsafeSlow(readSize);
      const { bytesRead } = await file.read(buf, 0, readSize, null);
      if (bytesRead === 0) return;
      total += bytesRead;
      yield bytesRead === readSize ? buf : buf.subarray(0, bytesRead);
    }
  } finally {
    await file.close();
  }
}
