/**
 * The scan on a worker thread (scan-thread.ts): walks one folder at a time as the main thread asks,
 * and posts the entries in batches, in order, with the warnings in their places. At most a few
 * batches are in flight, so a main thread that is behind holds the walk back.
 */
import { parentPort } from 'node:worker_threads';
import { scan, type ScanEntry } from './scan.js';
import type { ScanItem, ToScanMain, ToScanWorker } from './scan-thread.js';

const port = parentPort!;
const BATCH = 512;
const IN_FLIGHT = 4;

let credit = IN_FLIGHT;
let wake: (() => void) | null = null;

port.on('message', (msg: ToScanWorker) => {
  if (msg.t === 'ack') {
    credit++;
    wake?.();
    wake = null;
  } else void walk(msg.root, msg.exclude, msg.listings);
});

async function walk(root: string, exclude: string[], listings: boolean): Promise<void> {
  let items: ScanItem[] = [];
  const send = async (last: boolean) => {
    while (credit === 0) await new Promise<void>((r) => (wake = r));
    credit--;
    post({ t: 'batch', items, last });
    items = [];
  };
  try {
    const onWarning = (path: string, err: Error) => items.push({ warning: path, message: err.message });
    const onRootListing = (digest: string) => items.push({ rootListing: digest });
    for await (const e of scan(root, { exclude, onWarning, listings, onRootListing })) {
      items.push(e satisfies ScanEntry);
      if (items.length >= BATCH) await send(false);
    }
    await send(true);
  } catch (err) {
    post({ t: 'error', message: (err as Error).message, code: (err as NodeJS.ErrnoException).code });
  }
}

function post(msg: ToScanMain): void {
  port.postMessage(msg);
}
