import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { KuraError } from '../errors.js';
import type { MetaStore } from '../storage/meta-store.js';
import { createCa, issueClientCert, toPkcs12, type IssuedCert, type PemPair } from './ca.js';
import { CertRecord, StringList } from './records.js';
import type { Users } from './users.js';

const certKey = (fp: string) => `cert:${fp}`;
const userCertsKey = (name: string) => `certs-of:${name}`;

/** A newly issued client certificate with its PKCS#12 bundle, returned once and never stored. */
export interface IssuedClientCert extends IssuedCert {
  record: CertRecord;
  caPem: string;
  p12: Buffer;
}

/** How a certificate stands at now: valid, expired, or revoked (with the time). */
export function certStatus(c: CertRecord, now = Date.now()): string {
  if (c.revokedAt) return `revoked ${c.revokedAt}`;
  return Date.parse(c.notAfter) < now ? 'expired' : 'valid';
}

/** The Kura client CA on disk and the register of every certificate it issued. */
export class Certificates {
  constructor(
    private readonly meta: MetaStore,
    private readonly users: Users,
    private readonly caDir: string,
  ) {}

  /** Creates the CA when there is none; returns true when it did. */
  async initCa(): Promise<boolean> {
    if (await this.loadCa().catch(() => null)) return false;
    await mkdir(this.caDir, { recursive: true, mode: 0o700 });
    const ca = createCa('Kura client CA');
    await writeFile(join(this.caDir, 'ca.key'), ca.keyPem, { mode: 0o600, flag: 'wx' });
    await writeFile(join(this.caDir, 'ca.pem'), ca.certPem, { flag: 'wx' });
    return true;
  }

  /** The CA's certificate and key; throws not-found before `kura admin ca init`. */
  async loadCa(): Promise<PemPair> {
    try {
      const [certPem, keyPem] = await Promise.all([
        readFile(join(this.caDir, 'ca.pem'), 'utf8'),
        readFile(join(this.caDir, 'ca.key'), 'utf8'),
      ]);
      return { certPem, keyPem };
    } catch {
      throw new KuraError('not-found', 'there is no CA yet: run `kura admin ca init`');
    }
  }

  /** Issues a client certificate for an existing user and registers its fingerprint. */
  async issue(
    userName: string,
    opts: { days?: number; notBefore?: Date; notAfter?: Date; extKeyUsage?: 'clientAuth' | 'serverAuth'; mayDelete?: boolean } = {},
  ): Promise<IssuedClientCert> {
    await this.users.get(userName);
    const ca = await this.loadCa();
    const cert = issueClientCert(ca, userName, opts);
    const record: CertRecord = {
      fingerprint256: cert.fingerprint256,
      serial: cert.serial,
      user: userName,
      notBefore: cert.notBefore.toISOString(),
      notAfter: cert.notAfter.toISOString(),
      issuedAt: new Date().toISOString(),
      revokedAt: null,
      mayDelete: opts.mayDelete === true,
    };
    await this.meta.set(certKey(cert.fingerprint256), record);
    await this.meta.update(userCertsKey(userName), StringList, (l = []) => [...l, cert.fingerprint256]);
    const p12 = toPkcs12(cert, ca.certPem, { friendlyName: userName });
    return { ...cert, record, caPem: ca.certPem, p12 };
  }

  /** Revokes by fingerprint or serial (or a unique prefix of either, 4 hex digits at least); effective on the next request. */
  async revoke(idOrPrefix: string): Promise<CertRecord> {
    const target = await this.findOne(idOrPrefix);
    return this.meta.update(certKey(target.fingerprint256), CertRecord, (c) => ({
      ...(c as CertRecord),
      revokedAt: c?.revokedAt ?? new Date().toISOString(),
    }));
  }

  /** Every certificate of one user, or of all users. */
  async list(userName?: string): Promise<CertRecord[]> {
    const names = userName ? [userName] : (await this.users.list()).map((u) => u.name);
    const out: CertRecord[] = [];
    for (const name of names) {
      const fps = (await this.meta.get(userCertsKey(name), StringList)) ?? [];
      for (const fp of fps) {
        const rec = await this.byFingerprint(fp);
        if (rec) out.push(rec);
      }
    }
    return out;
  }

  async byFingerprint(fp: string): Promise<CertRecord | undefined> {
    return this.meta.get(certKey(fp), CertRecord);
  }

  private async findOne(idOrPrefix: string): Promise<CertRecord> {
    const needle = idOrPrefix.trim().toUpperCase().replace(/:/g, '');
    // An empty or tiny prefix would match whatever certificate happens to be alone in the register.
    if (!/^[0-9A-F]{4,}$/.test(needle)) {
      throw new KuraError('bad-request', `name a certificate by its serial or fingerprint (at least 4 hex digits), not "${idOrPrefix}"`);
    }
    const hits = (await this.list()).filter(
      (c) => c.fingerprint256.replace(/:/g, '').startsWith(needle) || c.serial.toUpperCase().startsWith(needle),
    );
    if (hits.length === 0) throw new KuraError('not-found', `no certificate matches ${idOrPrefix}`);
    if (hits.length > 1) throw new KuraError('bad-request', `${idOrPrefix} matches several certificates`);
    return hits[0] as CertRecord;
  }
}
