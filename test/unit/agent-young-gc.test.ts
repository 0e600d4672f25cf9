import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { setImmediate as turn } from 'node:timers/promises';
import { collectYoung } from '../../agent/young-gc.js';

describe('collectYoung', () => {
  it('frees the dead buffers a decipher left behind by the next turn of the event loop', async () => {
    const key = randomBytes(32);
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', key, iv);
    const sealed = Buffer.concat([cipher.update(randomBytes(512 * 1024)), cipher.final()]);
    const tag = cipher.getAuthTag();
    collectYoung();
    const before = process.memoryUsage().arrayBuffers;
    // 32 opened blobs of 512 KiB, dropped at once: what a decode job leaves.
    for (let i = 0; i < 32; i++) {
      const decipher = createDecipheriv('aes-256-gcm', key, iv);
      decipher.setAuthTag(tag);
      decipher.update(sealed);
      decipher.final();
    }
    const piled = process.memoryUsage().arrayBuffers - before;
    assert.ok(piled >= 8 << 20, `the dead plaintexts are still counted before the collection (${piled} bytes)`);
    collectYoung();
    // V8 releases the buffers' memory as its sweeper finishes, which a decode worker waiting for its
    // next job lets happen.
    await turn();
    const left = process.memoryUsage().arrayBuffers - before;
    assert.ok(left < 1 << 20, `${left} bytes of dead buffers are left after collectYoung`);
  });
});
