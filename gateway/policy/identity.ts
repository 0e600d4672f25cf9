import { X509Certificate } from 'node:crypto';
import type { TLSSocket, PeerCertificate } from 'node:tls';
import type { Request, Response } from 'express';
import { Passport } from 'passport';
import { Strategy as ClientCertStrategy } from 'passport-client-cert';
import { BasicStrategy } from 'passport-http';
import { Strategy as LocalStrategy } from 'passport-local';
import { KuraError } from '../errors.js';
import type { CertRecord, UserRecord } from './records.js';
import type { Certificates } from './certs.js';
import type { AppPasswords } from './app-passwords.js';
import type { Users } from './users.js';
import type { Operators } from './operators.js';

/** Who is calling, as proved by a certificate or an app password. */
export interface Principal {
  user: UserRecord;
  via: 'certificate' | 'app-password';
  certificate?: CertRecord;
}

const CLIENT_AUTH_OID = '1.3.6.1.5.5.7.3.2';

/**
 * Finds the caller's identity with passport: the TLS client certificate first (it counts only when
 * Node verified it against the Kura client CA, `socket.authorized`), then an app password over Basic.
 * Headers such as X-SSL-Client-Cert are never looked at. authenticate() throws a KuraError whose code
 * says why the caller was refused: credentials-required (→ 401), a certificate-* code (→ 403), ...
 */
export class Identity {
  private readonly passport = new Passport();

  constructor(
    private readonly users: Users,
    private readonly certs: Certificates,
    private readonly appPasswords: AppPasswords,
    private readonly operators: Operators,
  ) {
    this.passport.use(
      new ClientCertStrategy((cert, done) => {
        this.verifyCertificate(cert as unknown as PeerCertificate).then((p) => done(null, p), done);
      }),
    );
    this.passport.use(
      new BasicStrategy((name, password, done) => {
        this.verifyAppPassword(name, password).then((p) => done(null, p), done);
      }),
    );
    // The web console's sign-in forms (fields `name` and `password`): a user with an app password,
    // and the operator, whose password opens no user's area and no user credential opens the console's.
    this.passport.use(
      'user-form',
      new LocalStrategy({ usernameField: 'name' }, (name, password, done) => {
        this.verifyAppPassword(name, password).then((p) => done(null, p), done);
      }),
    );
    this.passport.use(
      'operator-form',
      new LocalStrategy({ usernameField: 'name' }, (name, password, done) => {
        this.operators.verify(name, password).then((ok) => done(null, ok ? { operator: true } : false), done);
      }),
    );
  }

  /** A user signing in on the console with name and app password (form body). Throws bad-credentials or user-disabled. */
  async signInUser(req: Request, res: Response): Promise<Principal> {
    return this.run('user-form', req, res);
  }

  /** The operator signing in on the console (form body). Throws bad-credentials when the password is wrong. */
  async signInOperator(req: Request, res: Response): Promise<void> {
    await this.run('operator-form', req, res);
  }

  async authenticate(req: Request, res: Response): Promise<Principal> {
    const socket = req.socket as TLSSocket;
    const peer = peerOf(socket);
    if (peer && Object.keys(peer).length > 0) {
      if (!socket.authorized) throw refusedCertificate(String(socket.authorizationError ?? 'unknown'));
      return this.run('client-cert', req, res);
    }
    if (/^basic /i.test(req.headers.authorization ?? '')) return this.run('basic', req, res);
    throw new KuraError('credentials-required', 'credentials-required: present a client certificate or an app password');
  }

  private run(strategy: string, req: Request, res: Response): Promise<Principal> {
    return new Promise((resolve, reject) => {
      const handler = this.passport.authenticate(strategy, { session: false }, (err: unknown, user: unknown) => {
        if (err) reject(err);
        else if (user) resolve(user as Principal);
        else reject(new KuraError('bad-credentials', 'bad-credentials: the user name or app password is wrong'));
      }) as (req: Request, res: Response, next: (err?: unknown) => void) => void;
      handler(req, res, reject);
    });
  }

  private async verifyCertificate(peer: PeerCertificate): Promise<Principal> {
    const record = await this.certs.byFingerprint(peer.fingerprint256);
    if (!record) throw new KuraError('certificate-unknown', 'certificate-unknown: this certificate is not registered to any user');
    if (record.revokedAt) throw new KuraError('certificate-revoked', `certificate-revoked: revoked on ${record.revokedAt}`);
    const x509 = certificateFacts(peer);
    const now = Date.now();
    if (now < x509.validFrom) throw new KuraError('certificate-not-yet-valid', 'certificate-not-yet-valid');
    if (now > x509.validTo) throw new KuraError('certificate-expired', 'certificate-expired');
    if (!x509.clientAuth) {
      throw new KuraError('certificate-not-for-client-auth', 'certificate-not-for-client-auth: it does not allow clientAuth');
    }
    const user = await this.users.get(record.user);
    if (user.disabled) throw new KuraError('user-disabled', `user-disabled: user ${user.name} is disabled`);
    return { user, via: 'certificate', certificate: record };
  }

  private async verifyAppPassword(name: string, password: string): Promise<Principal | false> {
    const user = await this.users.find(name);
    if (!user || !(await this.appPasswords.verify(name, password))) return false;
    if (user.disabled) throw new KuraError('user-disabled', `user-disabled: user ${user.name} is disabled`);
    return { user, via: 'app-password' };
  }
}

/**
 * The peer certificate of a connection, read once per connection (it cannot change on it). Its
 * registration, revocation and the user's status are still looked up on every request.
 */
function peerOf(socket: TLSSocket): PeerCertificate | null {
  if (typeof socket.getPeerCertificate !== 'function') return null;
  let peer = peers.get(socket);
  if (!peer) peers.set(socket, (peer = socket.getPeerCertificate()));
  return peer;
}
const peers = new WeakMap<TLSSocket, PeerCertificate>();

/** What the checks need of a certificate, parsed once per certificate (its bytes never change). */
function certificateFacts(peer: PeerCertificate): { validFrom: number; validTo: number; clientAuth: boolean } {
  let facts = parsed.get(peer.fingerprint256);
  if (!facts) {
    const x509 = new X509Certificate(peer.raw);
    facts = {
      validFrom: Date.parse(x509.validFrom),
      validTo: Date.parse(x509.validTo),
      clientAuth: (x509.keyUsage ?? []).includes(CLIENT_AUTH_OID),
    };
    if (parsed.size >= 10_000) parsed.clear();
    parsed.set(peer.fingerprint256, facts);
  }
  return facts;
}
const parsed = new Map<string, { validFrom: number; validTo: number; clientAuth: boolean }>();

function refusedCertificate(reason: string): KuraError {
  if (reason === 'CERT_HAS_EXPIRED') return new KuraError('certificate-expired', 'certificate-expired: the certificate has expired');
  if (reason === 'CERT_NOT_YET_VALID') return new KuraError('certificate-not-yet-valid', 'certificate-not-yet-valid');
  if (reason === 'INVALID_PURPOSE') {
    return new KuraError('certificate-not-for-client-auth', 'certificate-not-for-client-auth: it does not allow clientAuth');
  }
  return new KuraError('certificate-not-trusted', `certificate-not-trusted: it does not chain to the Kura client CA (${reason})`);
}
