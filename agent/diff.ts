import type { TreeEntry } from '../format/index.js';
import type { TreeLoader } from './trees.js';

export interface DiffLine {
  change: 'added' | 'removed' | 'changed';
  path: string;
  type: TreeEntry['type'];
}

/** What differs between two trees: paths added, removed, or changed (content, type, mode or target). */
export async function diffTrees(trees: TreeLoader, a: string | null, b: string | null, prefix = ''): Promise<DiffLine[]> {
  if (a === b) return [];
  const [left, right] = await Promise.all([trees.entries(a), trees.entries(b)]);
  const names = [...new Set([...left.keys(), ...right.keys()])].sort();
  const out: DiffLine[] = [];
  for (const name of names) {
    const path = prefix ? `${prefix}/${name}` : name;
    const l = left.get(name);
    const r = right.get(name);
    if (l?.type === 'dir' && r?.type === 'dir') out.push(...(await diffTrees(trees, l.subtree ?? null, r.subtree ?? null, path)));
    else if (!l && r) out.push(...(await allOf(trees, r, path, 'added')));
    else if (l && !r) out.push(...(await allOf(trees, l, path, 'removed')));
    else if (l && r && changed(l, r)) out.push({ change: 'changed', path, type: r.type });
  }
  return out;
}

function changed(l: TreeEntry, r: TreeEntry): boolean {
  return l.type !== r.type || l.mode !== r.mode || l.target !== r.target || (l.content ?? []).join() !== (r.content ?? []).join();
}

async function allOf(trees: TreeLoader, e: TreeEntry, path: string, change: 'added' | 'removed'): Promise<DiffLine[]> {
  const own: DiffLine = { change, path, type: e.type };
  if (e.type !== 'dir') return [own];
  const below =
    change === 'added' ? await diffTrees(trees, null, e.subtree ?? null, path) : await diffTrees(trees, e.subtree ?? null, null, path);
  return [own, ...below];
}
