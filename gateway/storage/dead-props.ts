import { cp, mkdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { replaceFile } from '../../common/replace-file.js';

/** One dead property: its qualified name and its element, serialised with its own namespace declarations. */
export interface DeadProp {
  ns: string;
  name: string;
  xml: string;
}

/**
 * Persistent dead properties (RFC 4918 §4) kept in a shadow tree beside the user's files, so they
 * survive restarts and follow their resource through MOVE, COPY and DELETE. Each resource's properties
 * live in `<root>/n_<seg>/.../props.json`; the `n_` prefix keeps user names apart from the file name.
 */
export class DeadPropStore {
  constructor(private readonly root: string) {}

  /** The resource's properties, empty when it has none. */
  async get(segs: readonly string[]): Promise<DeadProp[]> {
    try {
      const text = await readFile(this.file(segs), 'utf8');
      return JSON.parse(text) as DeadProp[];
    } catch {
      return [];
    }
  }

  /** Replaces the resource's whole property set atomically. */
  async put(segs: readonly string[], props: readonly DeadProp[]): Promise<void> {
    const target = this.file(segs);
    await mkdir(dirname(target), { recursive: true });
    await replaceFile(target, JSON.stringify(props));
  }

  /** Forgets the properties of a resource and of everything below it. */
  async remove(segs: readonly string[]): Promise<void> {
    await rm(this.dir(segs), { recursive: true, force: true });
  }

  /** Moves the properties of a resource tree along with it. */
  async move(from: readonly string[], to: readonly string[]): Promise<void> {
    await this.remove(to);
    if (!(await stat(this.dir(from)).catch(() => null))) return;
    await mkdir(dirname(this.dir(to)), { recursive: true });
    await rename(this.dir(from), this.dir(to));
  }

  /** Copies the properties of a resource tree (depth infinity) or of the resource alone (depth 0). */
  async copy(from: readonly string[], to: readonly string[], deep: boolean): Promise<void> {
    await this.remove(to);
    if (deep) {
      if (!(await stat(this.dir(from)).catch(() => null))) return;
      await cp(this.dir(from), this.dir(to), { recursive: true }).catch(() => undefined);
    } else {
      const props = await this.get(from);
      if (props.length > 0) await this.put(to, props);
    }
  }

  private dir(segs: readonly string[]): string {
    return join(this.root, ...segs.map((s) => `n_${s}`));
  }

  private file(segs: readonly string[]): string {
    return join(this.dir(segs), 'props.json');
  }
}
