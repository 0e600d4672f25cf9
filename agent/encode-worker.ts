import { parentPort, workerData } from 'node:worker_threads';
import { BlobCodec } from '../format/index.js';

/** A worker of the encode pool: ids and stored bytes (compressed, encrypted) for data chunks. */
const { encKey, idKey } = workerData as { encKey: Uint8Array | null; idKey: Uint8Array | null };
const codec = new BlobCodec(encKey && idKey ? { encKey: Buffer.from(encKey), idKey: Buffer.from(idKey) } : null);

parentPort?.on('message', ({ seq, plain }: { seq: number; plain: ArrayBuffer }) => {
  try {
    const buf = Buffer.from(plain);
    const id = codec.id(buf);
    const stored = codec.encode(buf);
    const out = new ArrayBuffer(stored.length);
    new Uint8Array(out).set(stored);
    parentPort?.postMessage({ seq, id, stored: out }, [out]);
  } catch (err) {
    parentPort?.postMessage({ seq, error: (err as Error).message });
  }
});
