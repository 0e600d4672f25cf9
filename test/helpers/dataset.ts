import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

/**
 * The shared dataset generator (../shared/bench/gen-dataset.mjs beside the checkout), or the pinned
 * copy in bench/ when a clone stands alone (as in CI): the same seed gives the same bytes either way.
 */
export const genDataset = [resolve(repoRoot, '../shared/bench/gen-dataset.mjs'), resolve(repoRoot, 'bench/gen-dataset.mjs')].find((p) =>
  existsSync(p),
)!;
