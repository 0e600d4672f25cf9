import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { agentEnv, backup, createDataset, mustAgent, type AgentEnv } from './agent.js';
import { dav, startTestGateway, type TestGateway, type TestUser } from './gateway.js';
import { makeTempDir, removeTempDir } from './processes.js';

/** A gateway with a plaintext user whose tiny dataset (plus a 10,000-entry folder) is backed up once. */
export interface BrowseFixture {
  gw: TestGateway;
  work: string;
  user: TestUser;
  env: AgentEnv;
  /** The backed-up folder; it is `data` inside the snapshot. */
  src: string;
  /** The snapshot's folder URL path, e.g. /snapshots/pc1/20261126T073300Z/ */
  snapshotPath: string;
  close(): Promise<void>;
}

export const MANY_ENTRIES = 10_000;

export async function browseFixture(userName: string, opts: { encrypted?: boolean; many?: boolean } = {}): Promise<BrowseFixture> {
  const gw = await startTestGateway();
  const work = await makeTempDir(`kura-${userName}-`);
  const user = await gw.addUser(userName);
  const env = await agentEnv(gw, user, { under: work, passphrase: opts.encrypted ? `${userName} passphrase` : undefined });
  await mustAgent(env, opts.encrypted ? ['key', 'init'] : ['key', 'init', '--plaintext']);
  const src = join(work, 'data');
  await createDataset(src);
  await mkdir(join(src, 'many'));
  for (let i = 0; i < (opts.many === false ? 0 : MANY_ENTRIES); i++)
    await writeFile(join(src, 'many', `f${String(i).padStart(5, '0')}.txt`), '');
  await writeFile(join(src, 'Café NFD ñ.txt'.normalize('NFD')), 'decomposed name\n');
  await backup(env, [src]);
  const listing = await dav(gw, { method: 'PROPFIND', path: `/snapshots/${env.KURA_HOST}/`, user, headers: { Depth: '1' } });
  const times = [...listing.text.matchAll(/<D:href>\/snapshots\/[^/]+\/([^/<]+)\/<\/D:href>/g)].map((m) => m[1]!);
  if (times.length !== 1) throw new Error(`expected one snapshot folder, got ${times.join(', ')}:\n${listing.text}`);
  return {
    gw,
    work,
    user,
    env,
    src,
    snapshotPath: `/snapshots/${env.KURA_HOST}/${times[0]}/`,
    async close() {
      await gw.close();
      await removeTempDir(work);
    },
  };
}

/** The hrefs of a multistatus body, decoded. */
export function hrefsOf(xml: string): string[] {
  return [...xml.matchAll(/<D:href>([^<]*)<\/D:href>/g)].map((m) => decodeURIComponent(m[1]!));
}
