// Offline admin commands that work on the data dir directly: agent add, user add, audit verify.
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { BastionError, ErrorCode } from '../errors/index.js';
import { writeKubeconfig } from '../app/kubeconfig.js';
import { openStore, isUserRole, USER_ROLES } from '../store/index.js';

function usage(message: string): BastionError {
  return new BastionError(ErrorCode.USAGE, message);
}

export const AGENT_USAGE = `usage: kube-bastion agent add NAME --kubeconfig-out FILE [--data-dir DIR] [--server URL]

Creates an agent identity in the data dir and writes a kubeconfig that reaches the bastion as it.

options:
  --kubeconfig-out FILE   where to write the agent's kubeconfig (its token is in it)
  --data-dir DIR          the bastion's data dir (default ./data; serve must have run with it once)
  --server URL            the bastion's Kubernetes endpoint, https:// (default https://127.0.0.1:6443)`;

export const USER_USAGE = `usage: kube-bastion user add NAME --role ${USER_ROLES.join('|')} [--data-dir DIR]

Creates a control-endpoint user and prints its token once (last line, alone).

options:
  --role ROLE      ${USER_ROLES.join(', ')}
  --data-dir DIR   the bastion's data dir (default ./data)`;

export const AUDIT_USAGE = `usage: kube-bastion audit verify [--data-dir DIR]

Checks the audit log's hash chain. Exit status: 0 intact, 1 broken (the first bad row is named), 2 usage.

options:
  --data-dir DIR   the bastion's data dir (default ./data)`;

const HELP = { help: { type: 'boolean', short: 'h' } } as const;

/** Prints the usage when -h/--help was given; true when it did. */
function helped(values: { help?: boolean | undefined }, text: string): boolean {
  if (values.help) process.stdout.write(`${text}\n`);
  return values.help === true;
}

export async function runAgent(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      'data-dir': { type: 'string', default: 'data' },
      server: { type: 'string', default: 'https://127.0.0.1:6443' },
      'kubeconfig-out': { type: 'string' },
      ...HELP,
    },
  });
  if (helped(values, AGENT_USAGE)) return 0;
  const [verb, name, ...rest] = positionals;
  if (verb !== 'add' || !name || rest.length > 0) throw usage(AGENT_USAGE);
  if (!values['kubeconfig-out']) throw usage(`--kubeconfig-out FILE is required\n${AGENT_USAGE}`);
  if (!values.server.startsWith('https://')) throw usage('--server must be https:// (kubectl sends tokens only over TLS)');
  const dataDir = resolve(values['data-dir']);
  const caPath = join(dataDir, 'tls', 'ca.crt');
  if (!existsSync(caPath)) throw usage(`--data-dir ${dataDir}: no bastion CA at ${caPath}; start kube-bastion serve with this data dir once first`);
  const store = openStore(dataDir);
  try {
    const { agent, token } = await store.agents.createAgent(name);
    await store.audit.append({ event: 'agent.created', actor: 'cli', agent: { id: agent.id, name: agent.name } });
    const out = resolve(values['kubeconfig-out']);
    await writeKubeconfig(out, { server: values.server.replace(/\/+$/, ''), caPem: await readFile(caPath, 'utf8'), token, name: `kube-bastion-${agent.name}` });
    process.stdout.write(`agent ${agent.name} (${agent.id}) created\nkubeconfig: ${out}\n`);
    return 0;
  } finally {
    await store.close();
  }
}

export async function runUser(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: { 'data-dir': { type: 'string', default: 'data' }, role: { type: 'string' }, ...HELP },
  });
  if (helped(values, USER_USAGE)) return 0;
  const [verb, name, ...rest] = positionals;
  if (verb !== 'add' || !name || rest.length > 0) throw usage(USER_USAGE);
  if (!values.role || !isUserRole(values.role)) throw usage(`--role must be one of ${USER_ROLES.join(', ')}\n${USER_USAGE}`);
  const store = openStore(resolve(values['data-dir']));
  try {
    const { user, token } = await store.users.createUser(name, values.role);
    await store.audit.append({ event: 'user.created', actor: 'cli', details: { user: user.name, role: user.role } });
    // The token last, alone on its line, so scripts can take it with `tail -n 1`.
    process.stdout.write(`user ${user.name} (${user.role}) created; its token is shown once:\n${token}\n`);
    return 0;
  } finally {
    await store.close();
  }
}

export async function runAudit(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, strict: true, options: { 'data-dir': { type: 'string', default: 'data' }, ...HELP } });
  if (helped(values, AUDIT_USAGE)) return 0;
  if (positionals.length !== 1 || positionals[0] !== 'verify') throw usage(AUDIT_USAGE);
  const dataDir = resolve(values['data-dir']);
  if (!existsSync(join(dataDir, 'kube-bastion.db'))) throw usage(`--data-dir ${dataDir}: no kube-bastion.db there`);
  const store = openStore(dataDir);
  try {
    const result = await store.audit.verify();
    if (result.ok) {
      process.stdout.write(`audit log OK: ${result.rows} rows, head ${result.head.headHash}\n`);
      return 0;
    }
    process.stdout.write(`audit log BROKEN at row ${result.rowId} (${result.reason}): ${result.message}\n${result.rowsVerified} rows before it verified\n`);
    return 1;
  } finally {
    await store.close();
  }
}
