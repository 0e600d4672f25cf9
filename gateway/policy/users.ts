import { randomUUID } from 'node:crypto';
import { KuraError } from '../errors.js';
import type { MetaStore } from '../storage/meta-store.js';
import { StringList, UserRecord, userNamePattern } from './records.js';

const userKey = (name: string) => `user:${name}`;
const USER_LIST = 'users';

/** The user registry: names, opaque area ids and the enabled flag. */
export class Users {
  constructor(private readonly meta: MetaStore) {}

  /** Adds a user; throws bad-request for an invalid name and exists when the name is taken. */
  async add(name: string): Promise<UserRecord> {
    if (!userNamePattern.test(name)) {
      throw new KuraError(
        'bad-request',
        'a user name is 2-32 characters: lower-case letters, digits, ".", "_" or "-", starting with a letter',
      );
    }
    if (await this.find(name)) throw new KuraError('exists', `user ${name} already exists`);
    const user: UserRecord = { name, id: randomUUID(), disabled: false, createdAt: new Date().toISOString() };
    await this.meta.set(userKey(name), user);
    await this.meta.update(USER_LIST, StringList, (list = []) => [...list, name].sort());
    return user;
  }

  async find(name: string): Promise<UserRecord | undefined> {
    return this.meta.get(userKey(name), UserRecord);
  }

  /** The user; throws not-found with the name when there is none. */
  async get(name: string): Promise<UserRecord> {
    const user = await this.find(name);
    if (!user) throw new KuraError('not-found', `no user named ${name}`);
    return user;
  }

  async list(): Promise<UserRecord[]> {
    const names = (await this.meta.get(USER_LIST, StringList)) ?? [];
    const users = await Promise.all(names.map((n) => this.find(n)));
    return users.filter((u): u is UserRecord => u !== undefined);
  }

  async setDisabled(name: string, disabled: boolean): Promise<UserRecord> {
    await this.get(name);
    return this.meta.update(userKey(name), UserRecord, (u) => ({ ...(u as UserRecord), disabled }));
  }
}
