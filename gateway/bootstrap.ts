import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Policy } from './policy/policy.js';

export const DEMO_USER = 'demo';

/** The files written for the demo user on first start. */
export interface DemoFiles {
  dir: string;
  caPem: string;
  certPem: string;
  keyPem: string;
  p12: string;
  appPasswordFile: string;
  appPassword: string;
}

/**
 * On a data folder with no users yet: creates the demo user with a contract (10 GiB, active), a
 * client certificate and an app password, and writes them to <data>/demo/ so a person can point a
 * client at the gateway at once. Returns null when the folder already had users.
 */
export async function createDemoUser(policy: Policy): Promise<DemoFiles | null> {
  if ((await policy.users.list()).length > 0) return null;
  await policy.users.add(DEMO_USER);
  await policy.contracts.set(DEMO_USER, { plan: 'demo', quotaBytes: 10 * 1024 ** 3, status: 'active' });
  const cert = await policy.certs.issue(DEMO_USER);
  const { password } = await policy.appPasswords.add(DEMO_USER, 'demo');
  const files = demoPaths(policy.layout.demoDir, password);
  await mkdir(files.dir, { recursive: true, mode: 0o700 });
  await writeFile(files.caPem, cert.caPem);
  await writeFile(files.certPem, cert.certPem);
  await writeFile(files.keyPem, cert.keyPem, { mode: 0o600 });
  await writeFile(files.p12, cert.p12, { mode: 0o600 });
  await writeFile(files.appPasswordFile, password + '\n', { mode: 0o600 });
  return files;
}

function demoPaths(dir: string, appPassword: string): DemoFiles {
  return {
    dir,
    caPem: join(dir, 'ca.pem'),
    certPem: join(dir, 'demo.pem'),
    keyPem: join(dir, 'demo.key'),
    p12: join(dir, 'demo.p12'),
    appPasswordFile: join(dir, 'demo.app-password'),
    appPassword,
  };
}

/** The demo files written on an earlier first start, or null when there are none. */
export async function existingDemo(policy: Policy): Promise<DemoFiles | null> {
  const files = demoPaths(policy.layout.demoDir, '');
  const password = await readFile(files.appPasswordFile, 'utf8').catch(() => null);
  return password === null ? null : { ...files, appPassword: password.trim() };
}

/** The lines printed after the first start: the URL and ready-to-paste client commands. */
export function demoInstructions(url: string, demo: DemoFiles): string {
  const files = `${url}files/`;
  return [
    `Demo user "${DEMO_USER}": its credentials are in ${demo.dir}/`,
    `  CA certificate:      ${demo.caPem}`,
    `  client certificate:  ${demo.certPem}  (key ${demo.keyPem}, PKCS#12 ${demo.p12}, no passphrase)`,
    `  app password:        ${demo.appPasswordFile}`,
    '',
    'Try it:',
    `  curl --cacert ${demo.caPem} --cert ${demo.certPem} --key ${demo.keyPem} -T README.md ${files}`,
    `  rclone lsf --webdav-url ${files} --webdav-vendor other --ca-cert ${demo.caPem} --client-cert ${demo.certPem} --client-key ${demo.keyPem} :webdav:`,
    `  curl --cacert ${demo.caPem} -u ${DEMO_USER}:$(cat ${demo.appPasswordFile}) ${files}`,
    `  davfs2 (as root): echo "${files} ${DEMO_USER} $(cat ${demo.appPasswordFile})" >> /etc/davfs2/secrets;` +
      ` echo "trust_ca_cert ${demo.caPem}" >> /etc/davfs2/davfs2.conf; mount -t davfs ${files} /mnt`,
  ].join('\n');
}
