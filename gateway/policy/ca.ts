/**
 * Certificate authority material for client-certificate login: a private CA, the gateway's TLS
 * server certificate and per-user client certificates, plus PKCS#12 bundles for WebDAV clients.
 *
 * node-forge builds and signs the X.509 structures; RSA keys come from Node's native generator
 * because forge's pure-JS prime search takes seconds per key.
 */
import crypto from 'node:crypto';
import net from 'node:net';
import forge from 'node-forge';

export interface PemPair {
  certPem: string;
  keyPem: string;
}

export interface IssuedCert extends PemPair {
  /** Same format as Node's `X509Certificate#fingerprint256` and `getPeerCertificate().fingerprint256`. */
  fingerprint256: string;
  /** Upper-case hex, as Node reports `serialNumber`, so revocation lists compare with plain `===`. */
  serial: string;
  notBefore: Date;
  notAfter: Date;
}

const DAY_MS = 86_400_000;
const ORGANIZATION = 'Kura';
/** Clock skew allowance: a freshly issued cert must already be valid on a slightly-behind client. */
const BACKDATE_MS = 5 * 60_000;
/** PKCS#12 KDF rounds; forge encodes the MAC iteration count in 16 bits, so stay below 65536. */
const PKCS12_ITERATIONS = 20_000;

/** forge's extension objects are untyped (`any[]`); this keeps ours at least name-checked. */
type Extension = { name: string } & Record<string, unknown>;

interface Signer {
  cert: forge.pki.Certificate;
  key: forge.pki.rsa.PrivateKey;
}

interface Window {
  notBefore: Date;
  notAfter: Date;
}

function newKeyPair(): { keyPem: string; publicKey: forge.pki.rsa.PublicKey } {
  const { publicKey, privateKey } = crypto.generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  return { keyPem: privateKey, publicKey: forge.pki.publicKeyFromPem(publicKey) };
}

function randomSerial(): string {
  const bytes = crypto.randomBytes(16);
  // DER INTEGERs are signed and RFC 5280 wants positive serials, so clear the high bit. A zero
  // first byte would then be non-minimal DER, which OpenSSL rejects as "illegal padding".
  bytes[0] = bytes[0]! & 0x7f || 0x01;
  return bytes.toString('hex');
}

function distinguishedName(commonName: string): forge.pki.CertificateField[] {
  if (commonName.trim() === '') throw new Error('certificate common name must not be empty');
  // UTF8String rather than forge's PrintableString default, which cannot carry '@', '_' or non-ASCII.
  // forge reads valueTagClass as a universal tag number; @types/node-forge mistypes it as a Class.
  const utf8 = forge.asn1.Type.UTF8 as number as forge.asn1.Class;
  return [
    { name: 'organizationName', value: ORGANIZATION, valueTagClass: utf8 },
    { name: 'commonName', value: commonName, valueTagClass: utf8 },
  ];
}

/** X.509 times carry whole seconds; truncating keeps the dates we return equal to the encoded ones. */
function validity(days: number | undefined, notBefore?: Date, notAfter?: Date): Window {
  const lifetimeDays = days ?? 365;
  if (!(lifetimeDays > 0)) throw new Error(`certificate lifetime must be positive, got ${lifetimeDays} days`);
  const start = Math.floor((notBefore?.getTime() ?? Date.now() - BACKDATE_MS) / 1000) * 1000;
  const end = Math.floor((notAfter?.getTime() ?? start + lifetimeDays * DAY_MS) / 1000) * 1000;
  if (!(end > start)) throw new Error('certificate notAfter must be later than notBefore');
  return { notBefore: new Date(start), notAfter: new Date(end) };
}

function subjectKeyId(cert: forge.pki.Certificate): string {
  // Prefer the CA's own SKI extension so authorityKeyIdentifier matches it byte for byte.
  const ext = cert.getExtension('subjectKeyIdentifier') as { subjectKeyIdentifier?: string } | null;
  return ext?.subjectKeyIdentifier ? forge.util.hexToBytes(ext.subjectKeyIdentifier) : cert.generateSubjectKeyIdentifier().getBytes();
}

/** Builds and signs a certificate; a signer whose `cert` is null means self-signed with its key. */
function buildCert(
  commonName: string,
  publicKey: forge.pki.rsa.PublicKey,
  window: Window,
  extensions: Extension[],
  signer: Signer | { cert: null; key: forge.pki.rsa.PrivateKey },
): forge.pki.Certificate {
  const cert = forge.pki.createCertificate();
  cert.publicKey = publicKey;
  cert.serialNumber = randomSerial();
  cert.validity.notBefore = window.notBefore;
  cert.validity.notAfter = window.notAfter;
  const subject = distinguishedName(commonName);
  cert.setSubject(subject);
  cert.setIssuer(signer.cert ? signer.cert.subject.attributes : subject);
  // For a self-signed cert the authority key is its own key, which forge derives from `true`.
  const authorityKeyId = signer.cert ? subjectKeyId(signer.cert) : true;
  cert.setExtensions([...extensions, { name: 'subjectKeyIdentifier' }, { name: 'authorityKeyIdentifier', keyIdentifier: authorityKeyId }]);
  cert.sign(signer.key, forge.md.sha256.create());
  return cert;
}

function loadSigner(ca: PemPair): Signer {
  const cert = forge.pki.certificateFromPem(ca.certPem);
  const key = forge.pki.privateKeyFromPem(ca.keyPem);
  const caPublic = cert.publicKey as forge.pki.rsa.PublicKey;
  // A mismatched pair would sign certificates that no verifier accepts; fail at issue time instead.
  if (caPublic.n.compareTo(key.n) !== 0) throw new Error('CA private key does not match the CA certificate');
  const basic = cert.getExtension('basicConstraints') as { cA?: boolean } | null;
  if (!basic?.cA) throw new Error('certificate is not a CA (basicConstraints cA is not set)');
  return { cert, key };
}

function issueLeaf(ca: PemPair, commonName: string, window: Window, extensions: Extension[]): IssuedCert {
  const signer = loadSigner(ca);
  const { keyPem, publicKey } = newKeyPair();
  const cert = buildCert(commonName, publicKey, window, extensions, signer);
  const certPem = forge.pki.certificateToPem(cert);
  const serial = cert.serialNumber.toUpperCase();
  return { certPem, keyPem, fingerprint256: fingerprintOf(certPem), serial, ...window };
}

/** A self-signed CA certificate (basicConstraints cA=true, keyCertSign+cRLSign). */
export function createCa(commonName: string, opts: { days?: number } = {}): PemPair {
  const { keyPem, publicKey } = newKeyPair();
  const window = validity(opts.days ?? 3650);
  const extensions: Extension[] = [
    // pathLen 0: this CA signs only leaf certificates, never intermediate CAs.
    { name: 'basicConstraints', critical: true, cA: true, pathLenConstraint: 0 },
    { name: 'keyUsage', critical: true, keyCertSign: true, cRLSign: true },
  ];
  const key = forge.pki.privateKeyFromPem(keyPem);
  const cert = buildCert(commonName, publicKey, window, extensions, { cert: null, key });
  return { certPem: forge.pki.certificateToPem(cert), keyPem };
}

/** Normalises one host into a SAN entry: type 2 is dNSName, type 7 is iPAddress. */
function altName(host: string): { type: number; value?: string; ip?: string } {
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  const family = net.isIP(bare);
  if (family === 4) return { type: 7, ip: bare };
  // forge's IPv6 parser only handles plain hex groups; the URL parser rewrites forms such as
  // "::ffff:1.2.3.4" into that shape (and rejects zone ids, which cannot appear in a SAN).
  if (family === 6) return { type: 7, ip: new URL(`http://[${bare}]/`).hostname.slice(1, -1) };
  return { type: 2, value: bare.toLowerCase() };
}

/** Server certificate for TLS: SAN with DNS names and IP addresses, EKU serverAuth. */
export function issueServerCert(ca: PemPair, hosts: string[], opts: { days?: number } = {}): IssuedCert {
  const unique = [...new Set(hosts.map((h) => h.trim()).filter((h) => h !== ''))];
  const first = unique[0];
  if (first === undefined) throw new Error('a server certificate needs at least one host name or IP');
  return issueLeaf(ca, first, validity(opts.days), [
    { name: 'basicConstraints', critical: true, cA: false },
    { name: 'keyUsage', critical: true, digitalSignature: true, keyEncipherment: true },
    { name: 'extKeyUsage', serverAuth: true },
    { name: 'subjectAltName', altNames: unique.map(altName) },
  ]);
}

/**
 * Client certificate with CN=userName and EKU clientAuth. `extKeyUsage: 'serverAuth'` exists so
 * tests can produce a certificate that TLS must refuse for client authentication.
 */
export function issueClientCert(
  ca: PemPair,
  userName: string,
  opts: { days?: number; notBefore?: Date; notAfter?: Date; extKeyUsage?: 'clientAuth' | 'serverAuth' } = {},
): IssuedCert {
  const usage = opts.extKeyUsage ?? 'clientAuth';
  return issueLeaf(ca, userName, validity(opts.days, opts.notBefore, opts.notAfter), [
    { name: 'basicConstraints', critical: true, cA: false },
    { name: 'keyUsage', critical: true, digitalSignature: true },
    { name: 'extKeyUsage', [usage]: true },
  ]);
}

/**
 * PKCS#12 bundle (key, cert, CA cert). "No passphrase" means the empty password "", exactly what
 * `openssl pkcs12 -export -passout pass:` writes: key shrouded and MAC keyed with "". OpenSSL
 * (curl, Node's `pfx`) tries "" by itself, and it is the only form neon's GnuTLS backend (litmus)
 * opens without prompting: it verifies the MAC with "" and then imports the key as *encrypted*
 * PKCS#8, so a plain keyBag fails to load and a NULL-password MAC makes it ask for a password.
 */
export function toPkcs12(pair: PemPair, caCertPem: string, opts: { passphrase?: string; friendlyName?: string } = {}): Buffer {
  const key = forge.pki.privateKeyFromPem(pair.keyPem);
  const chain = [forge.pki.certificateFromPem(pair.certPem), forge.pki.certificateFromPem(caCertPem)];
  // forge writes an unencrypted keyBag only for `null`; '' takes the shrouded path, as wanted.
  const pfx = forge.pkcs12.toPkcs12Asn1(key, chain, opts.passphrase ?? '', {
    // PBES2 with AES-256 rather than 3DES: the scheme OpenSSL 3 itself writes by default.
    algorithm: 'aes256',
    count: PKCS12_ITERATIONS,
    // forge tests `'friendlyName' in options`, so an explicit undefined would be encoded and crash.
    ...(opts.friendlyName !== undefined ? { friendlyName: opts.friendlyName } : {}),
  });
  return Buffer.from(forge.asn1.toDer(pfx).getBytes(), 'binary');
}

/** SHA-256 fingerprint of the first certificate in `certPem`, formatted like Node's `fingerprint256`. */
export function fingerprintOf(certPem: string): string {
  const block = forge.pem.decode(certPem).find((msg) => msg.type === 'CERTIFICATE');
  if (!block) throw new Error('no CERTIFICATE block in PEM input');
  const digest = crypto.createHash('sha256').update(Buffer.from(block.body, 'binary')).digest('hex');
  return (digest.toUpperCase().match(/../g) ?? []).join(':');
}
