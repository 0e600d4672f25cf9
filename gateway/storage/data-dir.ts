import { join } from 'node:path';

/** Where everything lives under the data folder (`--data`, default ./kura-data). */
export interface DataLayout {
  root: string;
  metaFile: string;
  caDir: string;
  tlsDir: string;
  demoDir: string;
  areasDir: string;
}

export function dataLayout(root: string): DataLayout {
  return {
    root,
    metaFile: join(root, 'meta.sqlite'),
    caDir: join(root, 'ca'),
    tlsDir: join(root, 'tls'),
    demoDir: join(root, 'demo'),
    areasDir: join(root, 'areas'),
  };
}

/** The folders of one user's private area. The id is opaque and never derived from a URL. */
export function areaLayout(layout: DataLayout, userId: string): { files: string; props: string; tmp: string } {
  const base = join(layout.areasDir, userId);
  return { files: join(base, 'files'), props: join(base, 'props'), tmp: join(base, 'tmp') };
}
