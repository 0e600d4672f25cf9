import type { Socket } from 'node:net';
import type { Request, Response } from 'express';
import { MetaStore } from '../storage/meta-store.js';
import { dataLayout, type DataLayout } from '../storage/data-dir.js';
import type { SpaceGuard } from '../storage/file-area.js';
import { AppPasswords } from './app-passwords.js';
import { Certificates } from './certs.js';
import { checkContract, Contracts } from './contracts.js';
import { Identity, type Principal } from './identity.js';
import type { ContractRecord } from './records.js';
import { Sessions } from './sessions.js';
import { Usage } from './usage.js';
import { Users } from './users.js';
import { Operators } from './operators.js';
import { ConsoleSessions } from './console-sessions.js';
import { UsageHistory } from './usage-history.js';

/** What a request may do once it is admitted: whose area, under which contract, with which quota guard. */
export interface Admission {
  principal: Principal;
  contract: ContractRecord;
  space: SpaceGuard;
}

/**
 * Every allow/deny decision of the gateway, and the administration the CLI (and later the web
 * console) performs. One instance per process over one data folder.
 */
export class Policy {
  readonly users: Users;
  readonly certs: Certificates;
  readonly appPasswords: AppPasswords;
  readonly contracts: Contracts;
  readonly usage: Usage;
  readonly sessions: Sessions;
  readonly identity: Identity;
  readonly operators: Operators;
  readonly consoleSessions: ConsoleSessions;
  readonly usageHistory: UsageHistory;
  private readonly openSessions = new WeakMap<Socket, string>();

  private constructor(
    readonly layout: DataLayout,
    readonly meta: MetaStore,
  ) {
    this.users = new Users(meta);
    this.certs = new Certificates(meta, this.users, layout.caDir);
    this.appPasswords = new AppPasswords(meta, this.users);
    this.contracts = new Contracts(meta, this.users);
    this.usage = new Usage(meta);
    this.sessions = new Sessions(meta);
    this.operators = new Operators(meta);
    this.identity = new Identity(this.users, this.certs, this.appPasswords, this.operators);
    this.consoleSessions = new ConsoleSessions(meta);
    this.usageHistory = new UsageHistory(meta);
  }

  static async open(dataDir: string): Promise<Policy> {
    const layout = dataLayout(dataDir);
    const { mkdir } = await import('node:fs/promises');
    await mkdir(layout.root, { recursive: true });
    return new Policy(layout, await MetaStore.openSqlite(layout.metaFile));
  }

  /**
   * Authenticates the request and checks the contract as it is right now (no cache), counting a new
   * session on the connection's first request. Throws the KuraError that explains a refusal.
   */
  async admit(req: Request, res: Response, now = new Date()): Promise<Admission> {
    const principal = await this.identity.authenticate(req, res);
    const name = principal.user.name;
    const contract = checkContract(await this.contracts.find(name), now);
    if (this.openSessions.get(req.socket) !== name) {
      await this.sessions.open(name, contract.sessionsPerDay, now);
      this.openSessions.set(req.socket, name);
    }
    return { principal, contract, space: this.usage.guard(name, contract.quotaBytes) };
  }

  async close(): Promise<void> {
    await this.meta.close();
  }
}
