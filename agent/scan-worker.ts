/**
 * The scan on a worker thread (scan-thread.ts): walks the folders it was given, one after the other,
 * and posts the entries in batches, in order, with the warnings in their places. It runs ahead of
 * the main thread by at most IN_FLIGHT batches, so a main thread that is behind holds the walk back.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { scan, type ScanEntry } from './scan.js';
import type { ScanItem, ScanWork, ToScanMain, ToScanWorker } from './scan-thread.js';

const port = parentPort!;
const work = workerData as ScanWork;
const BATCH = 512;
/** About 32,000 entries (some 10 MB) ahead at most. */
const IN_FLIGHT = 64;

let credit = IN_FLIGHT;
let wake: (() => void) | null = null;

port.on('message', (msg: ToScanWorker) => {
  if (msg.t === 'ack') {
    credit++;
    wake?.();
    wake = null;
  }
});

void (async () => {
  for (let root = 0; root < work.roots.length; root++) await walk(root);
})();

async function walk(root: number): Promise<void> {
  let items: ScanItem[] = [];
  const send = async (last: boolean) => {
    while (credit === 0) await new Promise<void>((r) => (wake = r));
    credit--;
    post({ t: 'batch', root, items, last });
    items = [];
  };
  try {
    const onWarning = (path: string, err: Error) => items.push({ warning: path, message: err.message });
    const onRootListing = (digest: string) => items.push({ rootListing: digest });
    for await (const e of scan(work.roots[root]!, { exclude: work.exclude, onWarning, listings: work.listings, onRootListing })) {
      items.push(e satisfies ScanEntry);
      if (items.length >= BATCH) await send(false);
    }
    await send(true);
  } catch (err) {
    post({ t: 'error', root, message: (err as Error).message, code: (err as NodeJS.ErrnoException).code });
  }
}

function post(msg: ToScanMain): void {
  port.postMessage(msg);
}
