import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import type { Policy } from '../gateway/policy/policy.js';
import { contractChangeFrom, formatSize, type ContractFields } from '../gateway/policy/contracts.js';
import type { UsageLine } from '../gateway/policy/recount.js';
import { contractStatuses } from '../gateway/policy/records.js';
import { KuraError } from '../gateway/errors.js';
import { addAdminCheckCommand } from './check-commands.js';
import { readJobs } from '../gateway/policy/area-records.js';
import { OPERATOR_NAME } from '../gateway/policy/operators.js';
import { jobsJson, jobsTable } from './job-table.js';
import { fail, report, table, type OutputOptions } from './output.js';

interface Common extends OutputOptions {
  data: string;
}

/** Runs an admin action over the data folder, closing the metadata store and reporting failures. */
function action<A extends unknown[]>(fn: (policy: Policy, opts: Common, ...args: A) => Promise<void>) {
  return async (...args: unknown[]) => {
    const cmd = args[args.length - 1] as Command;
    const opts = cmd.optsWithGlobals<Common>();
    // Loaded on demand so agent commands do not pay for the gateway's modules.
    const { Policy } = await import('../gateway/policy/policy.js');
    const policy = await Policy.open(resolve(opts.data));
    try {
      await fn(policy, opts, ...(args.slice(0, -2) as A));
    } catch (err) {
      fail(err, opts);
    } finally {
      await policy.close();
    }
  };
}

export function addAdminCommands(program: Command): void {
  const admin = program.command('admin').description('administer users, certificates, contracts and usage');
  admin.option('--data <dir>', 'data folder', './kura-data').option('--json', 'print JSON for scripts');
  addCaCommands(admin);
  addUserCommands(admin);
  addCertCommands(admin);
  addAppPasswordCommands(admin);
  addContractCommands(admin);
  addAdminCheckCommand(admin);
  addLogCommand(admin);
  admin
    .command('operator-password')
    .description("set a new random password for the web console's operator sign-in and print it once")
    .action(
      action(async (policy, opts) => {
        const password = await policy.operators.resetPassword();
        report(
          opts,
          { name: OPERATOR_NAME, password },
          () => `New operator password (shown only now; sign in as ${OPERATOR_NAME}):\n${password}`,
        );
      }),
    );
  admin
    .command('usage')
    .description('show usage against quota; --recount measures the disk and corrects the counters')
    .option('--recount', 'measure every area on disk and correct the counters')
    .action(
      action(async (policy, opts) => {
        const recount = Boolean((opts as Common & { recount?: boolean }).recount);
        const { usageReport } = await import('../gateway/policy/recount.js');
        const lines = await usageReport(policy, recount);
        report(opts, lines, () => usageTable(lines, recount));
      }),
    );
}

function usageTable(lines: UsageLine[], recount: boolean): string {
  if (lines.length === 0) return 'No users yet.';
  const rows = [['USER', 'USED', 'QUOTA', ...(recount ? ['COUNTER WAS', 'CHECK'] : [])]];
  for (const l of lines) {
    const check = l.drift === 0 ? 'counter agreed with the disk' : `counter was off by ${l.drift} bytes; corrected`;
    rows.push([
      l.user,
      formatSize(l.usedBytes),
      l.quotaBytes === null ? 'no contract' : formatSize(l.quotaBytes),
      ...(recount ? [formatSize(l.counterBefore ?? 0), check] : []),
    ]);
  }
  return table(rows);
}

function addCaCommands(admin: Command): void {
  admin
    .command('ca')
    .description('the client certificate authority')
    .command('init')
    .description('create the CA (once per data folder)')
    .action(
      action(async (policy, opts) => {
        const created = await policy.certs.initCa();
        report(opts, { created, dir: policy.layout.caDir }, () =>
          created ? `Created the Kura CA in ${policy.layout.caDir}/` : `The CA already exists in ${policy.layout.caDir}/; nothing changed.`,
        );
      }),
    );
}

function addUserCommands(admin: Command): void {
  const user = admin.command('user').description('users');
  user
    .command('add <name>')
    .description('add a user')
    .action(
      action(async (policy, opts, name: string) => {
        const u = await policy.users.add(name);
        report(
          opts,
          u,
          () =>
            `Added user ${u.name}. Next: kura admin contract set ${u.name} --quota 10GiB, then kura admin cert issue ${u.name} --out DIR`,
        );
      }),
    );
  user
    .command('list')
    .description('list users')
    .action(
      action(async (policy, opts) => {
        const users = await policy.users.list();
        report(opts, users, () =>
          users.length === 0
            ? 'No users yet.'
            : table([['USER', 'STATUS', 'CREATED'], ...users.map((u) => [u.name, u.disabled ? 'disabled' : 'enabled', u.createdAt])]),
        );
      }),
    );
  for (const [verb, disabled] of [
    ['disable', true],
    ['enable', false],
  ] as const) {
    user
      .command(`${verb} <name>`)
      .description(`${verb} a user (takes effect on the next request)`)
      .action(
        action(async (policy, opts, name: string) => {
          const u = await policy.users.setDisabled(name, disabled);
          report(opts, u, () => `User ${u.name} is now ${disabled ? 'disabled' : 'enabled'}.`);
        }),
      );
  }
}

function addCertCommands(admin: Command): void {
  const cert = admin.command('cert').description('client certificates');
  cert
    .command('issue <name>')
    .description('issue a client certificate; writes NAME.pem, NAME.key, NAME.p12 and ca.pem to --out')
    .requiredOption('--out <dir>', 'folder to write the certificate to')
    .option('--days <n>', 'validity in days', '365')
    .option('--delete-right', 'may also forget snapshots and prune (without it the certificate is append-only)')
    .action(
      action(async (policy, opts, name: string) => {
        const o = opts as Common & { out: string; days: string; deleteRight?: boolean };
        if (!/^\d+$/.test(o.days) || Number(o.days) < 1) throw new KuraError('bad-request', '--days must be a whole number of 1 or more');
        const issued = await policy.certs.issue(name, { days: Number(o.days), mayDelete: o.deleteRight === true });
        const out = resolve(o.out);
        await mkdir(out, { recursive: true, mode: 0o700 });
        await writeFile(join(out, `${name}.pem`), issued.certPem);
        await writeFile(join(out, `${name}.key`), issued.keyPem, { mode: 0o600 });
        await writeFile(join(out, `${name}.p12`), issued.p12, { mode: 0o600 });
        await writeFile(join(out, 'ca.pem'), issued.caPem);
        report(
          opts,
          { ...issued.record, out },
          () =>
            `Issued a certificate for ${name} (serial ${issued.serial}, valid until ${issued.record.notAfter}), ${o.deleteRight ? 'with the delete right: it may forget snapshots and prune' : 'append-only: it may add backups but not delete them'}.\nWrote ${name}.pem, ${name}.key, ${name}.p12 (no passphrase) and ca.pem to ${out}/`,
        );
      }),
    );
  cert
    .command('revoke <id>')
    .description('revoke by fingerprint or serial (a unique prefix is enough)')
    .action(
      action(async (policy, opts, id: string) => {
        const rec = await policy.certs.revoke(id);
        report(opts, rec, () => `Revoked certificate ${rec.serial} of ${rec.user}; it is refused from the next request on.`);
      }),
    );
  cert
    .command('list [name]')
    .description('list certificates')
    .action(
      action(async (policy, opts, name?: string) => {
        const certs = await policy.certs.list(name);
        // Imported here: certs.ts brings the CA code (node-forge), which no other command needs at start.
        const { certStatus } = await import('../gateway/policy/certs.js');
        report(opts, certs, () =>
          certs.length === 0
            ? 'No certificates.'
            : table([
                ['USER', 'SERIAL', 'EXPIRES', 'RIGHTS', 'STATUS'],
                ...certs.map((c) => [c.user, c.serial, c.notAfter, c.mayDelete ? 'add+delete' : 'append-only', certStatus(c)]),
              ]),
        );
      }),
    );
}

function addAppPasswordCommands(admin: Command): void {
  const pw = admin.command('app-password').description('app passwords for clients without certificates');
  pw.command('add <name>')
    .description('create an app password (shown once)')
    .option('--label <text>', 'what it is for', 'app password')
    .action(
      action(async (policy, opts, name: string) => {
        const created = await policy.appPasswords.add(name, (opts as Common & { label: string }).label);
        report(opts, created, () => `App password ${created.id} for ${name} (shown only now):\n${created.password}`);
      }),
    );
  pw.command('revoke <name> [id]')
    .description("revoke one app password, or all of the user's")
    .action(
      action(async (policy, opts, name: string, id?: string) => {
        const n = await policy.appPasswords.revoke(name, id);
        report(opts, { revoked: n }, () => `Revoked ${n} app password${n === 1 ? '' : 's'} of ${name}.`);
      }),
    );
}

/** The command-line flag of each contract field, for messages. */
const FLAG: Record<keyof ContractFields, string> = {
  plan: 'plan',
  quota: 'quota',
  maxSnapshots: 'max-snapshots',
  from: 'from',
  until: 'until',
  status: 'status',
  sessionsPerDay: 'sessions-per-day',
};

function addContractCommands(admin: Command): void {
  const contract = admin.command('contract').description('contracts');
  contract
    .command('set <name>')
    .description('create or change a contract')
    .option('--plan <name>', 'plan name')
    .option('--quota <size>', 'storage quota, e.g. 10GiB')
    .option('--max-snapshots <n>', 'maximum number of snapshots kept')
    .option('--from <date>', 'valid from (date or ISO time)')
    .option('--until <date>', 'valid until (date or ISO time; "none" for open-ended)')
    .option('--status <status>', `one of ${contractStatuses.join(', ')}`)
    .option('--sessions-per-day <n>', 'access limit: sessions per day ("none" for unlimited)')
    .action(
      action(async (policy, opts, name: string) => {
        const c = await policy.contracts.set(
          name,
          contractChangeFrom(opts as Common & ContractFields, (f) => `--${FLAG[f]}`),
        );
        report(opts, c, () => `Contract of ${name} saved.\n${describeContract(c)}`);
      }),
    );
  contract
    .command('show <name>')
    .description('show a contract')
    .action(
      action(async (policy, opts, name: string) => {
        await policy.users.get(name);
        const c = await policy.contracts.find(name);
        if (!c) throw new KuraError('not-found', `${name} has no contract: set one with kura admin contract set ${name} --quota 10GiB`);
        report(opts, c, () => describeContract(c));
      }),
    );
}

function describeContract(c: import('../gateway/policy/records.js').ContractRecord): string {
  return table([
    ['plan', c.plan],
    ['status', c.status],
    ['quota', `${formatSize(c.quotaBytes)} (${c.quotaBytes} bytes)`],
    ['max snapshots', String(c.maxSnapshots)],
    ['valid from', c.validFrom],
    ['valid until', c.validUntil ?? 'open-ended'],
    ['sessions per day', c.sessionsPerDay === null ? 'unlimited' : String(c.sessionsPerDay)],
  ]);
}

function addLogCommand(admin: Command): void {
  admin
    .command('log <user>')
    .description("show a user's backup log: every job of every host, its result, files and bytes")
    .action(
      action(async (policy, opts, name: string) => {
        const jobs = await readJobs(policy.layout, await policy.users.get(name));
        report(opts, jobsJson(jobs), () => jobsTable(jobs));
      }),
    );
}
