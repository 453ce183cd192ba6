// The identity and audit commands. `agent add`, `user add` and `audit verify` work on the data dir
// directly (they bootstrap, and need no running bastion); `agent list|revoke` and
// `user list|disable|rotate` speak the control API as a user, so the running bastion ends what a
// revoked agent holds at once and the audit log names who did it.
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { BastionError, ErrorCode, isBastionError } from '../errors/index.js';
import { writeKubeconfig } from '../app/kubeconfig.js';
import { openStore, isUserRole, USER_ROLES, type Agent, type User, type UserStore } from '../store/index.js';
import { checkpointDataDir, checkpointLabel, checkpointsPath } from '../evidence/checkpoints.js';
import { readCheckpointsText, verifyAuditTrust, type AuditTrustReport } from '../evidence/audit-trust.js';
import { loadOrCreateSigningKey, signingKeyPaths } from '../evidence/signing-key.js';
import { ApiFailure, client, formatTable } from './approvals.js';
import { DEFAULT_CONTROL_URL, resolveControlTarget, CONTROL_API_FLAGS } from './control-target.js';

function usage(message: string): BastionError {
  return new BastionError(ErrorCode.USAGE, message);
}

const API_OPTIONS = `options:
  --server URL     control API (default $KUBE_BASTION_URL, else ${DEFAULT_CONTROL_URL})
  --token TOKEN    user token (default $KUBE_BASTION_TOKEN)
  --ca FILE        CA certificate for an https --server (default $KUBE_BASTION_CA)
  -o, --output F   table (default) or json`;

const AGENT_SYNOPSES = {
  add: 'agent add NAME --kubeconfig-out FILE [--owner USER] [--data-dir DIR] [--server URL]',
  list: 'agent list [options]',
  revoke: 'agent revoke NAME [--reason TEXT] [options]',
} as const;

const AGENT_HELP = {
  add: `Creates an agent identity in the data dir (no running bastion needed) and writes a kubeconfig that
reaches the bastion as it. The agent belongs to its owner, who may not approve its requests.

options:
  --kubeconfig-out FILE   where to write the agent's kubeconfig (its token is in it)
  --owner USER            the user the agent belongs to (default: the first admin user, in creation order)
  --data-dir DIR          the bastion's data dir (default ./data; serve must have run with it once)
  --server URL            the bastion's Kubernetes endpoint, https:// (default https://127.0.0.1:6443)`,
  list: `Lists every agent with its owner, over the control API (any user's token).

${API_OPTIONS}`,
  revoke: `Revokes an agent over the control API (an admin's token): its token stops working, and its sessions,
held requests and approvals end at once. Idempotent.

  --reason TEXT    why (the agent's cut sessions and the audit log say it)
${API_OPTIONS}`,
} as const;

export const AGENT_USAGE = `usage: kube-bastion agent <command>

commands:
${Object.values(AGENT_SYNOPSES)
  .map((s) => `  ${s}`)
  .join('\n')}

add works on the data dir; list and revoke speak the control API of a running bastion
(kube-bastion agent <command> --help for each).`;

const USER_SYNOPSES = {
  add: `user add NAME --role ${USER_ROLES.join('|')} [--data-dir DIR]`,
  list: 'user list [options]',
  disable: 'user disable NAME [options]',
  rotate: 'user rotate NAME [options]',
} as const;

const USER_HELP = {
  add: `Creates a control-endpoint user in the data dir and prints its token once (last line, alone).

options:
  --role ROLE      ${USER_ROLES.join(', ')}
  --data-dir DIR   the bastion's data dir (default ./data)`,
  list: `Lists every user with its role and whether it is disabled, over the control API (an admin's token).

${API_OPTIONS}`,
  disable: `Disables a user over the control API (an admin's token): its token is refused (401) from the next
request on. The last enabled admin cannot be disabled. Idempotent.

${API_OPTIONS}`,
  rotate: `Replaces a user's token over the control API and prints the new one once (last line, alone); the
old token is refused (401) at once. Admins rotate anyone's token, other users only their own.

${API_OPTIONS}`,
} as const;

export const USER_USAGE = `usage: kube-bastion user <command>

commands:
${Object.values(USER_SYNOPSES)
  .map((s) => `  ${s}`)
  .join('\n')}

add works on the data dir; list, disable and rotate speak the control API of a running bastion
(kube-bastion user <command> --help for each).`;

function commandUsage<K extends string>(synopses: Record<K, string>, help: Record<K, string>, command: K): string {
  return `usage: kube-bastion ${synopses[command]}\n\n${help[command]}`;
}

export const AUDIT_USAGE = `usage: kube-bastion audit verify [--data-dir DIR] [--checkpoints FILE] [-o json]

Checks the audit log: its hash chain; that the chain still holds every head the bastion signed into
its checkpoints (a truncation, a wipe or a rewrite is named with the checkpoint that covered it); and
that every approval (state, scope, expiresAt, agent, decider) and session (approval, end) in the tables
agrees with its audit rows. Exit status: 0 all good, 1 anything found (each finding is named), 2 usage.

options:
  --data-dir DIR       the bastion's data dir (default ./data)
  --checkpoints FILE   the signed checkpoints to check against (default <data-dir>/audit-checkpoints.jsonl;
                       give a copy kept elsewhere, e.g. what --checkpoint-webhook received)
  -o, --output F       text (default) or json`;

const HELP = { help: { type: 'boolean', short: 'h' } } as const;
const API_FLAGS = CONTROL_API_FLAGS;

/** Prints the usage when -h/--help was given; true when it did. */
function helped(values: { help?: boolean | undefined }, text: string): boolean {
  if (values.help) process.stdout.write(`${text}\n`);
  return values.help === true;
}

/** The subcommand (the first argument) when it is one of `commands`; the group's usage otherwise. */
function subcommand<K extends string>(argv: string[], commands: Record<K, string>, groupUsage: string): K | 'help' {
  const first = argv[0];
  if (first === undefined) throw usage(groupUsage);
  if (first === '--help' || first === '-h' || first === 'help') return 'help';
  if (!Object.prototype.hasOwnProperty.call(commands, first)) throw usage(`unknown command ${JSON.stringify(first)}\n${groupUsage}`);
  return first as K;
}

/** The first admin user in creation order, enabled: the owner of agents `agent add` creates without --owner. */
export async function defaultAgentOwner(users: Pick<UserStore, 'listUsers'>): Promise<string | null> {
  return (await users.listUsers()).find((u) => u.role === 'admin' && u.disabledAt === null)?.name ?? null;
}

export async function runAgent(argv: string[]): Promise<number> {
  const command = subcommand(argv, AGENT_SYNOPSES, AGENT_USAGE);
  if (command === 'help') {
    process.stdout.write(`${AGENT_USAGE}\n`);
    return 0;
  }
  const text = commandUsage(AGENT_SYNOPSES, AGENT_HELP, command);
  if (command === 'add') return agentAdd(argv.slice(1), text);
  const flags = command === 'revoke' ? { ...API_FLAGS, reason: { type: 'string' } } as const : API_FLAGS;
  const { values, positionals } = parseArgs({ args: argv.slice(1), allowPositionals: true, strict: true, options: flags });
  if (helped(values, text)) return 0;
  const output = outputOf(values.output, text);
  if (command === 'list') {
    if (positionals.length > 0) throw usage(`"agent list" takes no arguments\n${text}`);
    return api<{ items: Agent[] }>('agent', values, 'GET', '/v1/agents', undefined, (r) =>
      output === 'json' ? json(r) : table(['NAME', 'OWNER', 'CREATED', 'REVOKED'], r.items.map((a) => [a.name, a.owner ?? '-', time(a.createdAt), time(a.revokedAt)]), 'No agents.'),
    );
  }
  const [name, ...rest] = positionals;
  if (!name || rest.length > 0) throw usage(`"agent revoke" takes one agent NAME\n${text}`);
  const reason = (values as { reason?: string }).reason;
  const body = reason !== undefined ? { reason } : {};
  return api<Agent>('agent', values, 'POST', `/v1/agents/${encodeURIComponent(name)}/revoke`, body, (a) =>
    output === 'json' ? json(a) : `agent ${a.name} revoked at ${time(a.revokedAt)}; its sessions, held requests and approvals ended\n`,
  );
}

async function agentAdd(argv: string[], text: string): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      'data-dir': { type: 'string', default: 'data' },
      server: { type: 'string', default: 'https://127.0.0.1:6443' },
      'kubeconfig-out': { type: 'string' },
      owner: { type: 'string' },
      ...HELP,
    },
  });
  if (helped(values, text)) return 0;
  const [name, ...rest] = positionals;
  if (!name || rest.length > 0) throw usage(text);
  if (!values['kubeconfig-out']) throw usage(`--kubeconfig-out FILE is required\n${text}`);
  if (!values.server.startsWith('https://')) throw usage('--server must be https:// (kubectl sends tokens only over TLS)');
  const dataDir = resolve(values['data-dir']);
  const caPath = join(dataDir, 'tls', 'ca.crt');
  if (!existsSync(caPath)) throw usage(`--data-dir ${dataDir}: no bastion CA at ${caPath}; start kube-bastion serve with this data dir once first`);
  const store = openStore(dataDir);
  try {
    const owner = values.owner ?? (await defaultAgentOwner(store.users));
    if (owner === null) throw usage('--owner USER is required: the data dir has no enabled admin user to own the agent');
    let created: Awaited<ReturnType<typeof store.agents.createAgent>>;
    try {
      created = await store.agents.createAgent(name, owner);
    } catch (err) {
      // An owner that is not an enabled user is the flag's fault.
      if (isBastionError(err, 'INVALID_FIELD') && err.field === 'owner') throw usage(`--owner: ${err.message}`);
      throw err;
    }
    const { agent, token } = created;
    await store.audit.append({ event: 'agent.created', actor: 'cli', agent: { id: agent.id, name: agent.name }, details: { owner } });
    await checkpointDataDir(dataDir, store.audit);
    const out = resolve(values['kubeconfig-out']);
    await writeKubeconfig(out, { server: values.server.replace(/\/+$/, ''), caPem: await readFile(caPath, 'utf8'), token, name: `kube-bastion-${agent.name}` });
    process.stdout.write(`agent ${agent.name} (${agent.id}) created, owned by ${owner}\nkubeconfig: ${out}\n`);
    return 0;
  } finally {
    await store.close();
  }
}

export async function runUser(argv: string[]): Promise<number> {
  const command = subcommand(argv, USER_SYNOPSES, USER_USAGE);
  if (command === 'help') {
    process.stdout.write(`${USER_USAGE}\n`);
    return 0;
  }
  const text = commandUsage(USER_SYNOPSES, USER_HELP, command);
  if (command === 'add') return userAdd(argv.slice(1), text);
  const { values, positionals } = parseArgs({ args: argv.slice(1), allowPositionals: true, strict: true, options: API_FLAGS });
  if (helped(values, text)) return 0;
  const output = outputOf(values.output, text);
  if (command === 'list') {
    if (positionals.length > 0) throw usage(`"user list" takes no arguments\n${text}`);
    return api<{ items: User[] }>('user', values, 'GET', '/v1/users', undefined, (r) =>
      output === 'json' ? json(r) : table(['NAME', 'ROLE', 'CREATED', 'DISABLED'], r.items.map((u) => [u.name, u.role, time(u.createdAt), time(u.disabledAt)]), 'No users.'),
    );
  }
  const [name, ...rest] = positionals;
  if (!name || rest.length > 0) throw usage(`"user ${command}" takes one user NAME\n${text}`);
  const path = `/v1/users/${encodeURIComponent(name)}`;
  if (command === 'disable') {
    return api<User>('user', values, 'POST', `${path}/disable`, undefined, (u) => (output === 'json' ? json(u) : `user ${u.name} disabled at ${time(u.disabledAt)}; its token no longer works\n`));
  }
  // The token last, alone on its line, so scripts can take it with `tail -n 1`.
  return api<{ user: User; token: string }>('user', values, 'POST', `${path}/rotate-token`, undefined, (r) =>
    output === 'json' ? json(r) : `user ${r.user.name}: new token (shown once; the old one no longer works):\n${r.token}\n`,
  );
}

async function userAdd(argv: string[], text: string): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: { 'data-dir': { type: 'string', default: 'data' }, role: { type: 'string' }, ...HELP },
  });
  if (helped(values, text)) return 0;
  const [name, ...rest] = positionals;
  if (!name || rest.length > 0) throw usage(text);
  if (!values.role || !isUserRole(values.role)) throw usage(`--role must be one of ${USER_ROLES.join(', ')}\n${text}`);
  const dataDir = resolve(values['data-dir']);
  const store = openStore(dataDir);
  try {
    const { user, token } = await store.users.createUser(name, values.role);
    await store.audit.append({ event: 'user.created', actor: 'cli', details: { user: user.name, role: user.role } });
    await checkpointDataDir(dataDir, store.audit);
    // The token last, alone on its line, so scripts can take it with `tail -n 1`.
    process.stdout.write(`user ${user.name} (${user.role}) created; its token is shown once:\n${token}\n`);
    return 0;
  } finally {
    await store.close();
  }
}

function outputOf(value: string | undefined, text: string): 'table' | 'json' {
  const output = value ?? 'table';
  if (output !== 'table' && output !== 'json') throw usage(`-o ${JSON.stringify(output)}: give table or json\n${text}`);
  return output;
}

/** One control API call: its answer rendered on stdout (exit 0), or the API's refusal on stderr (exit 1). */
async function api<T>(
  group: 'agent' | 'user',
  flags: { server?: string | undefined; token?: string | undefined; ca?: string | undefined },
  method: 'GET' | 'POST',
  path: string,
  body: unknown,
  render: (answer: T) => string,
): Promise<number> {
  const { server, token, ca } = resolveControlTarget(flags, process.env, 'kube-bastion user add NAME --role admin');
  let answer: T;
  try {
    answer = await client(server, token, ca).call<T>(method, path, body);
  } catch (e) {
    if (!(e instanceof ApiFailure)) throw e;
    process.stderr.write(`kube-bastion ${group}: ${e.message}${e.field ? ` (field ${e.field})` : ''}\n`);
    return 1;
  }
  process.stdout.write(render(answer));
  return 0;
}

const json = (v: unknown): string => `${JSON.stringify(v, null, 2)}\n`;
const time = (iso: string | null): string => (iso === null ? '-' : iso.replace(/\.\d+Z$/, 'Z'));

function table(header: string[], rows: string[][], empty: string): string {
  return rows.length === 0 ? `${empty}\n` : formatTable([header, ...rows]);
}

export async function runAudit(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: { 'data-dir': { type: 'string', default: 'data' }, checkpoints: { type: 'string' }, output: { type: 'string', short: 'o', default: 'text' }, ...HELP },
  });
  if (helped(values, AUDIT_USAGE)) return 0;
  if (positionals.length !== 1 || positionals[0] !== 'verify') throw usage(AUDIT_USAGE);
  if (values.output !== 'text' && values.output !== 'json') throw usage(`-o ${JSON.stringify(values.output)}: give text or json\n${AUDIT_USAGE}`);
  const dataDir = resolve(values['data-dir']);
  if (!existsSync(join(dataDir, 'kube-bastion.db'))) throw usage(`--data-dir ${dataDir}: no kube-bastion.db there`);
  const checkpointsFile = values.checkpoints !== undefined ? resolve(values.checkpoints) : checkpointsPath(dataDir);
  const text = await readCheckpointsText(checkpointsFile);
  if (text === undefined && values.checkpoints !== undefined) throw usage(`--checkpoints ${checkpointsFile}: no such file`);
  // The bastion's own key checks its checkpoints; without one nothing was ever signed here.
  const hasKey = existsSync(signingKeyPaths(dataDir).privateKey);
  const store = openStore(dataDir);
  try {
    const checkpoints = hasKey
      ? { text, publicKeyPem: loadOrCreateSigningKey(dataDir).publicKeyPem, where: checkpointsFile }
      : { text: undefined, publicKeyPem: '', where: checkpointsFile };
    // One snapshot: a serving bastion keeps writing sessions and their audit rows meanwhile.
    const report = await store.readSnapshot((tables) => verifyAuditTrust({ ...tables, checkpoints }));
    process.stdout.write(values.output === 'json' ? json(report) : auditReportText(report));
    return report.ok ? 0 : 1;
  } finally {
    await store.close();
  }
}

/** The verdict for people: the chain's line first (as before checkpoints), then one line per finding. */
export function auditReportText(r: AuditTrustReport): string {
  const lines: string[] = [];
  const c = r.chain;
  if (!c.ok) lines.push(`audit log BROKEN at row ${c.rowId} (${c.reason}): ${c.message}`, `${c.rowsVerified} rows before it verified`);
  else if (r.ok) lines.push(`audit log OK: ${c.rows} rows, head ${c.head.headHash}`);
  else lines.push(`audit log BROKEN: ${r.findings.length} finding${r.findings.length === 1 ? '' : 's'} (the chain itself is intact: ${c.rows} rows)`);
  for (const f of r.findings.slice(c.ok ? 0 : 1)) lines.push(`  ${f}`);
  const latest = r.checkpoints.latest;
  if (latest) lines.push(`  ${r.checkpoints.count} signed checkpoints; the latest, ${checkpointLabel(latest)}, covers rows 1..${latest.lastId}`);
  lines.push(`  ${r.tables.approvals} approvals and ${r.tables.sessions} sessions checked against their audit rows: ${r.tables.disagreements.length} disagree`);
  return `${lines.join('\n')}\n`;
}
