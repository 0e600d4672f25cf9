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
export interface AreaDirs {
  /** /files/: the user's plain folder. */
  files: string;
  /** /.kura/: packs, snapshot records, keys and the repository config, as the agent PUT them. */
  kura: string;
  /** The gateway's own bookkeeping for the area (the blob index); never served as is. */
  meta: string;
  props: string;
  tmp: string;
}

export function areaLayout(layout: DataLayout, userId: string): AreaDirs {
  const base = join(layout.areasDir, userId);
  const dir = (name: string) => join(base, name);
  return { files: dir('files'), kura: dir('kura'), meta: dir('meta'), props: dir('props'), tmp: dir('tmp') };
}
