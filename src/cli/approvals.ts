// `kube-bastion approvals ...`: the approval verbs over the control API (HTTP, a user token).
//
//   list [--state S] [--agent A]        get ID        watch [--agent A]
//   grant --agent A (stream or REST scope) --ttl 10m --reason TEXT
//   approve ID [--ttl 10m] [--reason T] [--uses N] [--scope request|shape] [--ports 8080,7000]
//   deny ID --reason T  revoke ID [--reason T]
//
// Exit status: 0 done, 1 the API (or the network) refused, 2 usage (thrown as BastionError USAGE,
// which main prints).
import { DEFAULT_CONTROL_URL, resolveControlTarget, CONTROL_API_FLAGS } from './control-target.js';
import http from 'node:http';
import https from 'node:https';
import { parseArgs } from 'node:util';
import type { Approval, ApprovalDecision, ApprovalScope } from '../model/approval.js';
import type { ApproveBody, DenyBody, GrantBody, RestGrant, RestRequestBinding, RevokeBody, StreamGrant } from '../model/approval-schema.js';
import { APPROVAL_STATES, RESOURCE_VERBS, REST_APPROVAL_WIDTHS, STREAM_OPERATIONS, type ResourceVerb, type RestApprovalWidth, type StreamOperation } from '../model/vocabulary.js';
import type { ApprovalListSchema, ErrorBody } from '../api/schemas.js';
import { BastionError, ErrorCode } from '../errors/index.js';
import type { ReviewRecord } from '../model/review-record-schema.js';
import { formatRecord } from './record.js';
import type { z } from 'zod';

/** `exec[,attach,portforward]`: the --verbs a stream grant takes. */
const VERBS_TEXT = `${STREAM_OPERATIONS[0]}[,${STREAM_OPERATIONS.slice(1).join(',')}]`;

/** Each approvals command's synopsis (continuation lines indented under the command name). */
const SYNOPSES = {
  list: `list [--state ${APPROVAL_STATES.join('|')}] [--agent NAME]`,
  get: 'get ID',
  show: 'show ID   the same as get',
  record: 'record ID                           the review record: the five questions answered (also: kube-bastion record ID)',
  grant: `grant --agent NAME --namespace NS --pod POD --container C --verbs ${VERBS_TEXT}
        --ttl DURATION --reason TEXT [--command '["argv","as","JSON"]' ...] [--max-sessions N]
        [--ports PORT,...] (required with portforward; --container is left out when --verbs is
        only portforward: a port-forward reaches the pod)
  grant --agent NAME --verb VERB --resource RESOURCE [--namespace NS] [--name NAME]
        --ttl DURATION --reason TEXT [--max-uses N]`,
  approve: `approve ID [--ttl DURATION] [--reason TEXT] [--uses N] [--scope ${REST_APPROVAL_WIDTHS.join('|')}] [--ports PORT,...]
        a held REST request is approved for that exact request, once; --uses N admits it N times,
        --scope shape any request of its verb, resource, namespace and name (any body; --uses N
        limits it, else until expiry); a held port-forward needs --ports, the pod ports its
        connections may reach (kubectl names them only inside the stream)`,
  deny: 'deny ID --reason TEXT',
  revoke: 'revoke ID [--reason TEXT]',
  watch: 'watch [--agent NAME] [--interval DURATION]   print pending requests as they arrive (Ctrl-C stops)',
} as const;

const APPROVALS_OPTIONS = `options:
  --server URL     control API (default $KUBE_BASTION_URL, else ${DEFAULT_CONTROL_URL})
  --token TOKEN    user token (default $KUBE_BASTION_TOKEN; kube-bastion user add NAME --role ROLE)
  --ca FILE        CA certificate for an https --server (default $KUBE_BASTION_CA)
  -o, --output F   table (default) or json

DURATION: 90s, 10m, 2h, 1h30m, 1d, or whole seconds.`;

export const APPROVALS_USAGE = `usage: kube-bastion approvals <command> [options]

commands:
${Object.values(SYNOPSES)
  .map((s) => `  ${s}`)
  .join('\n')}

${APPROVALS_OPTIONS}`;

/** `approvals <command> --help`: that command's synopsis, then the common options. */
export function approvalsCommandUsage(command: keyof typeof SYNOPSES): string {
  const lines = SYNOPSES[command].split('\n').map((line, i) => (i === 0 ? `usage: kube-bastion approvals ${line}` : line.startsWith('  grant ') ? `       kube-bastion approvals ${line.trimStart()}` : `${' '.repeat(28)}${line}`));
  return `${lines.join('\n')}\n\n${APPROVALS_OPTIONS}`;
}

/** Where output goes and what the command sees (tests replace these). */
export interface ApprovalsIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  env: Record<string, string | undefined>;
  /** Stops `watch` (default: SIGINT). */
  signal?: AbortSignal;
}

const OPTIONS = {
  ...CONTROL_API_FLAGS,
  state: { type: 'string' },
  agent: { type: 'string' },
  namespace: { type: 'string' },
  pod: { type: 'string' },
  container: { type: 'string' },
  verbs: { type: 'string' },
  command: { type: 'string', multiple: true },
  'max-sessions': { type: 'string' },
  ports: { type: 'string' },
  'max-uses': { type: 'string' },
  uses: { type: 'string' },
  scope: { type: 'string' },
  verb: { type: 'string' },
  resource: { type: 'string' },
  name: { type: 'string' },
  ttl: { type: 'string' },
  reason: { type: 'string' },
  interval: { type: 'string' },
} as const;

type Flag = keyof typeof OPTIONS;
const COMMON: readonly Flag[] = ['server', 'token', 'ca', 'output', 'help'];
const COMMANDS: Record<string, { flags: readonly Flag[]; id: boolean }> = {
  list: { flags: ['state', 'agent'], id: false },
  get: { flags: [], id: true },
  show: { flags: [], id: true },
  record: { flags: [], id: true },
  grant: {
    flags: ['agent', 'namespace', 'pod', 'container', 'verbs', 'command', 'max-sessions', 'ports', 'verb', 'resource', 'name', 'max-uses', 'ttl', 'reason'],
    id: false,
  },
  approve: { flags: ['ttl', 'reason', 'uses', 'scope', 'ports'], id: true },
  deny: { flags: ['reason'], id: true },
  revoke: { flags: ['reason'], id: true },
  watch: { flags: ['agent', 'interval'], id: false },
};

const STREAM_FLAGS: readonly Flag[] = ['pod', 'container', 'verbs', 'command', 'max-sessions', 'ports'];
const REST_FLAGS: readonly Flag[] = ['verb', 'resource', 'name', 'max-uses'];

type ApprovalList = z.infer<typeof ApprovalListSchema>;

/** API body fields (error.field) and the flags that set them: every field of both grant shapes and of approve. */
const FIELD_FLAGS: Record<keyof StreamGrant | keyof RestGrant | 'state' | 'uses' | 'scope', string> = {
  maxUses: '--max-uses',
  uses: '--uses',
  scope: '--scope',
  agent: '--agent',
  namespace: '--namespace',
  pod: '--pod',
  container: '--container',
  verbs: '--verbs',
  commands: '--command',
  maxSessions: '--max-sessions',
  ports: '--ports',
  verb: '--verb',
  resource: '--resource',
  name: '--name',
  ttlSeconds: '--ttl',
  reason: '--reason',
  state: '--state',
};

function usage(message: string): BastionError {
  return new BastionError(ErrorCode.USAGE, `${message}\n${APPROVALS_USAGE}`);
}

/** `90s`, `10m`, `2h`, `1h30m`, `1d`, or whole seconds, into seconds (at least 1). */
export function parseDuration(text: string, flag: string): number {
  const m = /^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/.exec(text.trim());
  const bare = /^\d+$/.test(text.trim());
  if ((!m && !bare) || text.trim() === '') {
    throw usage(`${flag} ${JSON.stringify(text)}: give a duration like 90s, 10m, 2h or 1h30m`);
  }
  const seconds = bare ? Number(text.trim()) : Number(m![1] ?? 0) * 86400 + Number(m![2] ?? 0) * 3600 + Number(m![3] ?? 0) * 60 + Number(m![4] ?? 0);
  if (!Number.isSafeInteger(seconds) || seconds < 1) throw usage(`${flag} ${JSON.stringify(text)}: must be at least 1s`);
  return seconds;
}

/** Longest command shown in a one-line scope; `get` shows every command whole. */
const COMMAND_WIDTH = 48;

/** An argument as a shell would need it: bare when plain, else single-quoted. */
function shellWord(arg: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

/** An argv as one shell-like line. */
export function formatArgv(argv: readonly string[]): string {
  return argv.map(shellWord).join(' ');
}

/** The command allow-list in one line: the first command (cut at COMMAND_WIDTH), then how many more. */
function briefCommands(commands: readonly (readonly string[])[]): string {
  const first = formatArgv(commands[0] ?? []);
  const shown = first.length > COMMAND_WIDTH ? `${first.slice(0, COMMAND_WIDTH - 1)}…` : first;
  return `-- ${shown}${commands.length > 1 ? ` (+${commands.length - 1} more)` : ''}`;
}

/** A port-forward's ports: `8080,7000`, or `none` while its approver has not named them. */
export function formatPorts(ports: readonly number[] | undefined): string {
  return ports === undefined ? 'none' : ports.join(',');
}

/**
 * The scope in a kubectl-like line: `exec web-0 -c app -n demo -- ls -l`, `portforward web-0 -n demo
 * ports=8080`, `delete namespaces demo`. Cluster-scoped objects (namespace '') have no `-n`; a
 * port-forward-only scope names no container.
 */
export function formatScope(scope: ApprovalScope): string {
  if (scope.kind === 'stream') {
    const extra = [
      ...(scope.verbs.includes('portforward') ? [`ports=${formatPorts(scope.ports)}`] : []),
      ...(scope.maxSessions !== undefined ? [`max-sessions=${scope.maxSessions}`] : []),
      ...(scope.commands ? [briefCommands(scope.commands)] : []),
    ];
    const container = scope.container !== undefined ? ` -c ${scope.container}` : '';
    return [`${scope.verbs.join(',')} ${scope.pod}${container} -n ${scope.namespace}`, ...extra].join(' ');
  }
  const extra = [...(scope.request ? ['exact-request'] : []), ...(scope.maxUses !== undefined ? [`max-uses=${scope.maxUses}`] : [])];
  return [scope.verb, scope.resource, ...(scope.name ? [scope.name] : []), ...(scope.namespace ? [`-n ${scope.namespace}`] : []), ...extra].join(' ');
}

/** The RISK cell: how many high findings the held body has ('-': no body). */
function riskCell(a: Approval): string {
  const risk = a.request?.risk;
  if (!risk) return '-';
  return `${risk.findings.filter((f) => f.level === 'high').length} high`;
}

/** The held request's target: method, path and canonical query. */
function requestLine(r: NonNullable<Approval['request']>): string {
  return `${r.method} ${r.path}${r.query ? `?${r.query}` : ''}${r.command ? ` ${JSON.stringify(r.command)}` : ''}`;
}

/** A held body and its risk summary, for `approvals get`. */
function bodyDetails(r: NonNullable<Approval['request']>): string {
  if (!r.body) return '';
  const b = r.body;
  const lines = [
    '',
    `Body: ${b.bytes} bytes, ${b.contentType ?? 'no content type'}, sha256 ${b.sha256}${b.redacted ? ', secret values redacted' : ''}${b.truncated ? ', shown truncated' : ''}`,
  ];
  if (r.risk) {
    lines.push(`Risk: ${r.risk.subject}${r.risk.patch ? ' (a patch: best effort)' : ''}`);
    for (const f of r.risk.findings) lines.push(`  ${f.level.padEnd(6)} ${f.text}`);
  }
  lines.push(b.text === null ? '(the body is not shown)' : b.text);
  return `${lines.join('\n')}\n`;
}

/** The state, and for a pending approval nobody waits on any more, since when. */
function formatState(a: Approval): string {
  return a.state === 'pending' && a.nobodyWaitingSince ? `pending (nobody waiting since ${formatTime(a.nobodyWaitingSince)})` : a.state;
}

function formatTime(iso: string | null): string {
  return iso === null ? '-' : iso.replace(/\.\d+Z$/, 'Z');
}

const COLUMNS = ['ID', 'STATE', 'AGENT', 'SCOPE', 'EXPIRES', 'RISK'] as const;

function row(a: Approval): string[] {
  return [a.id, formatState(a), a.agent, formatScope(a.scope), formatTime(a.expiresAt), riskCell(a)];
}

export function formatTable(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]! + 3))).join('').trimEnd()).join('\n') + '\n';
}

/** The exact request a REST approval is bound to: `POST /path?query body <sha256>, Content-Type application/json, Content-Encoding none`. */
function bindingLine(r: RestRequestBinding): string {
  // A binding stored before the media type was bound lacks it (and covers no request).
  const header = (v: string | null | undefined): string => (v === undefined ? '(not recorded)' : (v ?? 'none'));
  return `${r.method} ${r.path}${r.query ? `?${r.query}` : ''} body ${r.bodySha256 ?? 'none'}, Content-Type ${header(r.contentType)}, Content-Encoding ${header(r.contentEncoding)}`;
}
function details(a: Approval): string {
  const lines: Array<[string, string]> = [
    ['ID', a.id],
    ['State', formatState(a)],
    ['Agent', `${a.agent} (${a.agentId})`],
    ['Scope', formatScope(a.scope)],
    ...(a.scope.kind === 'stream' && a.scope.commands ? a.scope.commands.map((argv, i): [string, string] => [i === 0 ? 'Commands' : '', JSON.stringify(argv)]) : []),
    ...(a.scope.kind === 'stream' && a.scope.verbs.includes('portforward')
      ? [['Ports', a.scope.ports ? a.scope.ports.join(', ') : `none named yet${a.state === 'pending' ? ' (approve with --ports)' : ''}`] as [string, string]]
      : []),
    ['Requested by', a.requestedBy],
    ...(a.request ? [['Request', requestLine(a.request)] as [string, string]] : []),
    ...(a.scope.kind === 'rest' && a.scope.request ? [['Bound to', bindingLine(a.scope.request)] as [string, string]] : []),
    ...(a.request?.client ? [['Client', a.request.client] as [string, string]] : []),
    ...(a.request?.rule ? [['Rule', `${a.request.rule}${a.request.policyHash ? ` (policy sha256:${a.request.policyHash.slice(0, 12)})` : ''}`] as [string, string]] : []),
    ...(a.nobodyWaitingSince ? [['Nobody waiting', `since ${formatTime(a.nobodyWaitingSince)}`] as [string, string]] : []),
    ['Decided by', a.decidedBy ?? '-'],
    ['Reason', a.reason ?? '-'],
    ['TTL', `${a.ttlSeconds}s`],
    ['Created', formatTime(a.createdAt)],
    ['Decided', formatTime(a.decidedAt)],
    ['Expires', formatTime(a.expiresAt)],
    ...(a.revokedAt ? [['Revoked', `${formatTime(a.revokedAt)}${a.revokedBy ? ` by ${a.revokedBy}` : ''}`] as [string, string]] : []),
    [a.scope.kind === 'rest' ? 'Uses' : 'Sessions', String(a.sessionsStarted)],
    ...a.decisions.map((d, i): [string, string] => [i === 0 ? 'Decisions' : '', formatDecision(d)]),
  ];
  const width = Math.max(...lines.map(([k]) => k.length)) + 2;
  return lines.map(([k, v]) => `${k ? `${k}:` : ''}`.padEnd(width) + v).join('\n') + '\n' + (a.request ? bodyDetails(a.request) : '');
}

/** One line of the decision history: `2025-06-02T09:15:00Z approved by user:ann (ttl 900s): reason`. */
export function formatDecision(d: ApprovalDecision): string {
  const ttl = d.ttlSeconds !== null ? ` (ttl ${d.ttlSeconds}s)` : '';
  return `${formatTime(d.at)} ${d.kind} by ${d.by}${ttl}${d.reason ? `: ${d.reason}` : ''}`;
}

export class ApiFailure extends Error {
  constructor(
    message: string,
    readonly field?: string,
  ) {
    super(message);
  }
}

export interface Client {
  call<T>(method: string, path: string, body?: unknown): Promise<T>;
}

export function client(server: URL, token: string, ca: string | undefined): Client {
  const base = server.href.replace(/\/+$/, '');
  return {
    call: <T>(method: string, path: string, body?: unknown) =>
      new Promise<T>((resolve, reject) => {
        const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
        const headers: Record<string, string | number> = { Authorization: `Bearer ${token}`, Accept: 'application/json' };
        if (payload) Object.assign(headers, { 'Content-Type': 'application/json', 'Content-Length': payload.length });
        const url = `${base}${path}`;
        const opts = { method, headers, timeout: 30_000, ...(ca !== undefined ? { ca } : {}) };
        const req = (server.protocol === 'https:' ? https : http).request(url, opts, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', reject);
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let parsed: unknown;
            try {
              parsed = JSON.parse(text);
            } catch {
              return reject(new ApiFailure(`${method} ${url}: HTTP ${res.statusCode} with a body that is not JSON: ${text.slice(0, 200)}`));
            }
            const status = res.statusCode ?? 0;
            if (status >= 200 && status < 300) return resolve(parsed as T);
            const err = (parsed as Partial<ErrorBody>).error;
            const message = typeof err?.message === 'string' ? err.message : `HTTP ${status}`;
            const field = typeof err?.field === 'string' ? err.field : undefined;
            const hint = status === 401 ? ' (check --token or KUBE_BASTION_TOKEN)' : '';
            reject(new ApiFailure(`${message}${hint}`, field));
          });
        });
        req.on('timeout', () => req.destroy(new Error('no answer in 30s')));
        req.on('error', (e: NodeJS.ErrnoException) => {
          if (e instanceof ApiFailure) return reject(e);
          reject(new ApiFailure(`cannot reach the control API at ${server.origin} (${e.code ?? e.message}); set --server or KUBE_BASTION_URL`));
        });
        req.end(payload);
      }),
  };
}

function parse(argv: string[]) {
  try {
    return parseArgs({ args: argv, allowPositionals: true, strict: true, options: OPTIONS });
  } catch (err) {
    throw usage((err as Error).message);
  }
}

function nonEmpty(values: Partial<Record<Flag, unknown>>, flag: Flag, what: string): string {
  const v = values[flag];
  if (typeof v !== 'string' || v.trim() === '') throw usage(`--${flag} ${what} is required`);
  return v;
}

function isOneOf<T extends string>(list: readonly T[], v: string): v is T {
  return (list as readonly string[]).includes(v);
}

function grantBody(values: ReturnType<typeof parse>['values']): GrantBody {
  const given = (f: Flag): boolean => values[f] !== undefined;
  const stream = STREAM_FLAGS.filter(given);
  const rest = REST_FLAGS.filter(given);
  if (stream.length > 0 && rest.length > 0) {
    throw usage(`--${rest[0]} is for REST grants and --${stream[0]} for stream grants: grant one kind of scope at a time`);
  }
  if (stream.length === 0 && rest.length === 0) {
    throw usage(`grant needs a scope: --pod, --container and --verbs (${STREAM_OPERATIONS.join('/')}; --ports for portforward), or --verb and --resource (a REST call)`);
  }
  const agent = nonEmpty(values, 'agent', 'NAME');
  if (stream.length > 0) {
    const namespace = nonEmpty(values, 'namespace', 'NS');
    const pod = nonEmpty(values, 'pod', 'POD');
    const verbs: StreamOperation[] = nonEmpty(values, 'verbs', VERBS_TEXT)
      .split(',')
      .map((v) => v.trim())
      .filter(Boolean)
      .map((v) => {
        if (!isOneOf(STREAM_OPERATIONS, v)) throw usage(`--verbs: ${JSON.stringify(v)} is not one of ${STREAM_OPERATIONS.join(', ')}`);
        return v;
      });
    const body: StreamGrant = { agent, namespace, pod, verbs, ttlSeconds: ttl(values), reason: nonEmpty(values, 'reason', 'TEXT') };
    // exec and attach run in a container; a port-forward reaches the pod (the API refuses a container on one).
    if (verbs.some((v) => v !== 'portforward') || values.container !== undefined) body.container = nonEmpty(values, 'container', 'CONTAINER');
    if (values.ports !== undefined) body.ports = parsePorts(values.ports);
    if (values.command) {
      body.commands = values.command.map((text) => {
        let argv: unknown;
        try {
          argv = JSON.parse(text);
        } catch {
          argv = undefined;
        }
        if (!Array.isArray(argv) || argv.length === 0 || !argv.every((a) => typeof a === 'string')) {
          throw usage(`--command ${JSON.stringify(text)}: give one argv as a JSON array of strings, e.g. --command '["ls","-l","/data"]'`);
        }
        return argv as string[];
      });
    }
    if (values['max-sessions'] !== undefined) {
      const n = values['max-sessions'];
      if (!/^\d+$/.test(n) || Number(n) < 1) throw usage(`--max-sessions ${JSON.stringify(n)}: give a whole number, at least 1`);
      body.maxSessions = Number(n);
    }
    return body;
  }
  const verb = nonEmpty(values, 'verb', 'VERB');
  if (!isOneOf<ResourceVerb>(RESOURCE_VERBS, verb)) throw usage(`--verb: ${JSON.stringify(verb)} is not one of ${RESOURCE_VERBS.join(', ')}`);
  const body: RestGrant = { agent, verb, resource: nonEmpty(values, 'resource', 'RESOURCE'), ttlSeconds: ttl(values), reason: nonEmpty(values, 'reason', 'TEXT') };
  if (values.namespace !== undefined) body.namespace = values.namespace;
  if (values.name !== undefined) body.name = values.name;
  if (values['max-uses'] !== undefined) body.maxUses = positive(values['max-uses'], '--max-uses');
  return body;
}

/** `--ports 8080,7000`: whole numbers; their range and repeats are the API's to check (it names the field). */
function parsePorts(text: string): number[] {
  const parts = text.split(',').map((p) => p.trim());
  if (parts.some((p) => !/^\d+$/.test(p))) throw usage(`--ports ${JSON.stringify(text)}: give pod ports separated by commas, e.g. --ports 8080,7000`);
  return parts.map(Number);
}

function positive(text: string, flag: string): number {
  if (!/^\d+$/.test(text) || Number(text) < 1) throw usage(`${flag} ${JSON.stringify(text)}: give a whole number, at least 1`);
  return Number(text);
}

function ttl(values: ReturnType<typeof parse>['values']): number {
  return parseDuration(nonEmpty(values, 'ttl', 'DURATION'), '--ttl');
}

export async function runApprovals(argv: string[], io: Partial<ApprovalsIo> = {}): Promise<number> {
  const out = io.stdout ?? ((t: string) => void process.stdout.write(t));
  const err = io.stderr ?? ((t: string) => void process.stderr.write(t));
  const env = io.env ?? process.env;

  const { values, positionals } = parse(argv);
  const [command, ...args] = positionals;
  if (values.help || command === 'help') {
    out(`${command !== undefined && command in SYNOPSES ? approvalsCommandUsage(command as keyof typeof SYNOPSES) : APPROVALS_USAGE}\n`);
    return 0;
  }
  if (command === undefined) throw usage('give a command');
  const spec = COMMANDS[command];
  if (!spec) throw usage(`unknown command ${JSON.stringify(command)}`);
  for (const flag of Object.keys(values) as Flag[]) {
    if (!COMMON.includes(flag) && !spec.flags.includes(flag)) throw usage(`--${flag} is not an option of "approvals ${command}"`);
  }
  if (spec.id && args.length !== 1) throw usage(`"approvals ${command}" takes one approval ID`);
  if (!spec.id && args.length > 0) throw usage(`"approvals ${command}" takes no arguments (got ${JSON.stringify(args.join(' '))})`);
  const id = args[0] ?? '';

  const output = values.output ?? 'table';
  if (output !== 'table' && output !== 'json') throw usage(`-o ${JSON.stringify(output)}: give table or json`);
  const { server, token, ca } = resolveControlTarget(values, env, 'kube-bastion user add NAME --role ROLE');

  // Everything the user typed is checked before the first request.
  let request: (() => Promise<unknown>) | undefined;
  const api = client(server, token, ca);
  const path = `/v1/approvals/${encodeURIComponent(id)}`;
  switch (command) {
    case 'list': {
      if (values.state !== undefined && !(APPROVAL_STATES as readonly string[]).includes(values.state)) {
        throw usage(`--state ${JSON.stringify(values.state)}: give one of ${APPROVAL_STATES.join(', ')}`);
      }
      const q = new URLSearchParams();
      if (values.state !== undefined) q.set('state', values.state);
      if (values.agent !== undefined) q.set('agent', values.agent);
      request = () => api.call('GET', `/v1/approvals${q.toString() ? `?${q}` : ''}`);
      break;
    }
    case 'get':
    case 'show':
      request = () => api.call('GET', path);
      break;
    case 'record':
      request = () => api.call('GET', `${path}/record`);
      break;
    case 'grant': {
      const body = grantBody(values);
      request = () => api.call('POST', '/v1/approvals', body);
      break;
    }
    case 'approve': {
      const width = values.scope;
      if (width !== undefined && !isOneOf<RestApprovalWidth>(REST_APPROVAL_WIDTHS, width)) throw usage(`--scope ${JSON.stringify(width)}: give ${REST_APPROVAL_WIDTHS.join(' or ')}`);
      const body: ApproveBody = {
        ...(values.ttl !== undefined ? { ttlSeconds: parseDuration(values.ttl, '--ttl') } : {}),
        ...(values.reason !== undefined ? { reason: values.reason } : {}),
        ...(values.uses !== undefined ? { uses: positive(values.uses, '--uses') } : {}),
        ...(width !== undefined ? { scope: width } : {}),
        ...(values.ports !== undefined ? { ports: parsePorts(values.ports) } : {}),
      };
      request = () => api.call('POST', `${path}/approve`, body);
      break;
    }
    case 'deny': {
      const body: DenyBody = { reason: nonEmpty(values, 'reason', 'TEXT') };
      request = () => api.call('POST', `${path}/deny`, body);
      break;
    }
    case 'revoke': {
      const body: RevokeBody = values.reason !== undefined ? { reason: values.reason } : {};
      request = () => api.call('POST', `${path}/revoke`, body);
      break;
    }
    case 'watch': {
      const intervalMs = values.interval !== undefined ? parseDuration(values.interval, '--interval') * 1000 : 1000;
      return watch(api, { agent: values.agent, intervalMs, json: output === 'json', out, err, signal: io.signal });
    }
  }

  let result: unknown;
  try {
    result = await request!();
  } catch (e) {
    return failed(e, err);
  }
  if (output === 'json') {
    out(`${JSON.stringify(result, null, 2)}\n`);
    return 0;
  }
  if (command === 'list') {
    const items = (result as ApprovalList).items;
    if (items.length === 0) err('No approvals found.\n');
    else out(formatTable([[...COLUMNS], ...items.map(row)]));
    return 0;
  }
  if (command === 'record') {
    out(formatRecord(result as ReviewRecord));
    return 0;
  }
  const a = result as Approval;
  if (command === 'get' || command === 'show') {
    out(details(a));
    return 0;
  }
  const done: Record<string, string> = { grant: 'granted', approve: 'approved', deny: 'denied', revoke: 'revoked' };
  const verb = done[command] ?? command;
  out(`approval ${a.id} ${verb}: ${formatScope(a.scope)} for agent ${a.agent}${a.expiresAt ? `, expires ${formatTime(a.expiresAt)}` : ''}\n`);
  return 0;
}

function failed(e: unknown, err: (t: string) => void): number {
  if (!(e instanceof ApiFailure)) throw e;
  const base = e.field?.replace(/[[.].*$/, '');
  const flag = base !== undefined ? (FIELD_FLAGS as Record<string, string | undefined>)[base] : undefined;
  // The flag once: a message may already name it.
  const hint = flag ? (e.message.includes(`(${flag})`) ? '' : ` (${flag})`) : e.field ? ` (field ${e.field})` : '';
  err(`kube-bastion approvals: ${e.message}${hint}\n`);
  return 1;
}

async function watch(
  api: Client,
  o: { agent: string | undefined; intervalMs: number; json: boolean; out: (t: string) => void; err: (t: string) => void; signal: AbortSignal | undefined },
): Promise<number> {
  const controller = new AbortController();
  const onSigint = (): void => controller.abort();
  if (o.signal) o.signal.addEventListener('abort', onSigint, { once: true });
  else process.once('SIGINT', onSigint);
  const signal = controller.signal;
  const q = new URLSearchParams({ state: 'pending' });
  if (o.agent !== undefined) q.set('agent', o.agent);
  const seen = new Set<string>();
  let header = false;
  try {
    while (!signal.aborted) {
      let items: Approval[];
      try {
        items = (await api.call<ApprovalList>('GET', `/v1/approvals?${q}`)).items;
      } catch (e) {
        if (signal.aborted) break;
        return failed(e, o.err);
      }
      // Oldest first, so they print in arrival order.
      for (const a of [...items].reverse()) {
        if (seen.has(a.id)) continue;
        seen.add(a.id);
        if (o.json) {
          o.out(`${JSON.stringify(a)}\n`);
        } else {
          const cells = [...row(a), a.request ? requestLine(a.request) : '-'];
          if (!header) {
            o.out(`${[...COLUMNS, 'REQUEST'].join('\t')}\n`);
            header = true;
          }
          o.out(`${cells.join('\t')}\n`);
        }
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, o.intervalMs);
        signal.addEventListener(
          'abort',
          () => {
            clearTimeout(t);
            resolve();
          },
          { once: true },
        );
      });
    }
    return 0;
  } finally {
    if (o.signal) o.signal.removeEventListener('abort', onSigint);
    else process.off('SIGINT', onSigint);
  }
}
