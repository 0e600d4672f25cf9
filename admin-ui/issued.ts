import { randomBytes } from 'node:crypto';
import type { Router } from 'express';
import { KuraError } from '../gateway/errors.js';
import type { IssuedClientCert } from '../gateway/policy/certs.js';
import type { Policy } from '../gateway/policy/policy.js';
import { operatorAction, operatorPage } from './pages.js';
import type { OperatorCtx, Shown } from './context.js';
import { csrfField, html, shortTime } from './html.js';
import { sendAttachment } from './download.js';

/**
 * Secrets made on the operator's request (a certificate's private key, an app password) are handed
 * out once: kept in this process's memory only, for the session that asked, for 15 minutes, and
 * dropped as soon as they have been taken. They never reach the metadata store or the disk.
 */
interface Pending {
  owner: string;
  user: string;
  expires: number;
  cert?: { serial: string; notAfter: string; pem: string; p12: Buffer; left: Set<'pem' | 'p12'> };
  appPassword?: { id: string; label: string; password: string };
}

const TTL_MS = 15 * 60_000;
const pending = new Map<string, Pending>();

function keep(p: Omit<Pending, 'expires'>): string {
  for (const [id, old] of pending) if (old.expires < Date.now()) pending.delete(id);
  const id = randomBytes(16).toString('hex');
  pending.set(id, { ...p, expires: Date.now() + TTL_MS });
  return id;
}

export function keepCertificate(owner: string, user: string, issued: IssuedClientCert): string {
  const pem = issued.certPem + issued.keyPem;
  return keep({
    owner,
    user,
    cert: { serial: issued.serial, notAfter: issued.record.notAfter, pem, p12: issued.p12, left: new Set(['pem', 'p12']) },
  });
}

export function keepAppPassword(owner: string, user: string, created: { id: string; password: string }, label: string): string {
  return keep({ owner, user, appPassword: { ...created, label } });
}

function find(c: OperatorCtx): [string, Pending] {
  const id = String(c.req.params.id ?? '');
  const p = pending.get(id);
  if (!p || p.owner !== c.session.csrf || p.expires < Date.now()) {
    pending.delete(id);
    throw new KuraError('not-found', 'this was shown or downloaded already, or 15 minutes have passed: issue a new one if it was lost');
  }
  return [id, p];
}

export function addIssuedRoutes(router: Router, policy: Policy): void {
  router.get('/admin/issued/:id', operatorPage(policy, issuedPage));
  router.post(
    '/admin/issued/:id/:kind',
    operatorAction(
      policy,
      async (c) => {
        const [id, p] = find(c);
        const kind = c.req.params.kind === 'p12' ? 'p12' : 'pem';
        if (!p.cert || !p.cert.left.has(kind))
          throw new KuraError('not-found', `the ${kind === 'p12' ? 'PKCS#12 file' : 'PEM file'} was downloaded already`);
        p.cert.left.delete(kind);
        if (p.cert.left.size === 0) pending.delete(id);
        const body = kind === 'p12' ? p.cert.p12 : Buffer.from(p.cert.pem);
        sendAttachment(
          c.res,
          `${p.user}.${kind === 'p12' ? 'p12' : 'pem'}`,
          kind === 'p12' ? 'application/x-pkcs12' : 'application/x-pem-file',
          body,
        );
        return { redirect: '' };
      },
      issuedPage,
    ),
  );
}

async function issuedPage(c: OperatorCtx): Promise<Shown> {
  const [id, p] = find(c);
  if (p.appPassword) {
    pending.delete(id);
    const a = p.appPassword;
    return {
      title: `App password for ${p.user}`,
      body: html`<section class="card">
        <p>Copy it now: it is shown only this once (only a hash is kept).</p>
        <dl class="facts">
          <dt>User name</dt>
          <dd><code>${p.user}</code></dd>
          <dt>App password</dt>
          <dd><code id="app-password">${a.password}</code></dd>
          <dt>Label</dt>
          <dd>${a.label}</dd>
          <dt>Id</dt>
          <dd><code>${a.id}</code></dd>
        </dl>
        <p><a href="/console/admin/users/${p.user}">Back to ${p.user}</a></p>
      </section>`,
    };
  }
  const cert = p.cert as NonNullable<Pending['cert']>;
  const button = (kind: 'pem' | 'p12', label: string) =>
    cert.left.has(kind)
      ? html`<form method="post" action="/console/admin/issued/${id}/${kind}" class="inline">
          ${csrfField(c.session.csrf)}<button>${label}</button>
        </form>`
      : html`<span class="badge">${label}: downloaded</span>`;
  return {
    title: `Certificate for ${p.user}`,
    body: html`<section class="card">
      <p>Serial <code>${cert.serial}</code>, valid until ${shortTime(cert.notAfter)}.</p>
      <p>Each file can be downloaded <strong>once</strong>: the private key is not kept anywhere after that.</p>
      <p class="row">${button('pem', 'Download PEM (certificate and key)')} ${button('p12', 'Download PKCS#12 (no passphrase)')}</p>
      <p class="muted small">Clients also need the gateway's CA certificate: <a href="/console/ca.pem">ca.pem</a> (public).</p>
      <p><a href="/console/admin/users/${p.user}">Back to ${p.user}</a></p>
    </section>`,
  };
}
