// `kube-bastion sessions ...`: the recorded sessions over the control API (HTTP, a user token).
//
//   list [--approval ID] [--agent NAME] [--state open|ended]
//   show ID (= get ID)   one session with every hash; a port-forward's forwarded connections
//
// Exit status: 0 done, 1 the API (or the network) refused, 2 usage.
import { parseArgs } from 'node:util';
import type { ApiSession, ApiSessionDetail, SessionList } from '../api/schemas.js';
import { BastionError, ErrorCode } from '../errors/index.js';
import type { ForwardedConnection } from '../model/forward.js';
import { SESSION_STATES } from '../model/vocabulary.js';
import { ApiFailure, client, formatArgv, formatTable } from './approvals.js';
import { DEFAULT_CONTROL_URL, resolveControlTarget, CONTROL_API_FLAGS } from './control-target.js';

const SYNOPSES = {
  list: `list [--approval ID] [--agent NAME] [--state ${SESSION_STATES.join('|')}]   newest first`,
  show: `show ID     one session with every hash; a port-forward's connections
              (port, times, outcome, bytes and sha256 each way)`,
  get: 'get ID      the same as show',
} as const;

const SESSIONS_OPTIONS = `options:
  --server URL     control API (default $KUBE_BASTION_URL, else ${DEFAULT_CONTROL_URL})
  --token TOKEN    user token (default $KUBE_BASTION_TOKEN; kube-bastion user add NAME --role reviewer)
  --ca FILE        CA certificate for an https --server (default $KUBE_BASTION_CA)
  -o, --output F   table (default) or json`;

export const SESSIONS_USAGE = `usage: kube-bastion sessions <command> [options]

commands:
${Object.values(SYNOPSES)
  .map((l) => `  ${l}`)
  .join('\n')}

${SESSIONS_OPTIONS}`;

export interface SessionsIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  env: Record<string, string | undefined>;
}

const OPTIONS = {
  ...CONTROL_API_FLAGS,
  approval: { type: 'string' },
  agent: { type: 'string' },
  state: { type: 'string' },
} as const;

function usage(message: string): BastionError {
  return new BastionError(ErrorCode.USAGE, `${message}\n${SESSIONS_USAGE}`);
}

const time = (iso: string | null): string => (iso === null ? '-' : iso.replace(/\.\d+Z$/, 'Z'));

/** What a session ran: `exec web-0 -c app -n demo -- ls -l`, `portforward web-0 -n demo`. */
function target(s: ApiSession): string {
  const container = s.operation === 'portforward' ? '' : ` -c ${s.container}`;
  const command = s.command.length > 0 ? ` -- ${formatArgv(s.command)}` : '';
  return `${s.operation ?? '?'} ${s.pod}${container} -n ${s.namespace}${command}`;
}

function listRow(s: ApiSession): string[] {
  return [s.id, s.state, s.agent, target(s), time(s.startedAt), s.endReason ?? '-', s.approvalId ?? '-'];
}

/** One forwarded connection as a table row. */
function connectionRow(c: ForwardedConnection): string[] {
  return [String(c.seq), String(c.port), time(c.startedAt), time(c.endedAt), c.outcome ?? 'open', String(c.bytesIn), String(c.bytesOut), c.protocol ?? '-'];
}

/** What follows a connection's row: what its client was told (a refused one said so), its hashes and raw sidecar. */
function connectionNotes(c: ForwardedConnection): string[] {
  const notes: string[] = [];
  if (c.outcome === 'refused') notes.push(`refused, outside the approved ports: ${c.detail ?? '-'}`);
  else if (c.detail) notes.push(c.detail);
  if (c.sha256In !== null || c.sha256Out !== null) notes.push(`sha256 in ${c.sha256In ?? '-'} out ${c.sha256Out ?? '-'}`);
  if (c.rawPath !== null) notes.push(`raw ${c.rawPath}${c.rawSha256 ? ` sha256 ${c.rawSha256}` : ''}`);
  return notes;
}

/** The connections table, each row followed by its notes (indented, outside the columns). */
function connectionsTable(connections: readonly ForwardedConnection[]): string {
  const [header, ...rows] = formatTable([['SEQ', 'PORT', 'STARTED', 'ENDED', 'OUTCOME', 'IN', 'OUT', 'PROTOCOL'], ...connections.map(connectionRow)]).trimEnd().split('\n');
  const lines = [`  ${header!}`];
  rows.forEach((row, i) => lines.push(`  ${row}`, ...connectionNotes(connections[i]!).map((n) => `      ${n}`)));
  return `${lines.join('\n')}\n`;
}

export function formatSession(s: ApiSessionDetail): string {
  const lines: Array<[string, string]> = [
    ['ID', s.id],
    ['State', s.state],
    ['Agent', `${s.agent} (${s.agentId})`],
    ['Approval', s.approvalId ?? '- (allowed by policy)'],
    ['Target', target(s)],
    ['Transport', `${s.transport} ${s.protocol}${s.upstreamProtocol ? ` (upstream ${s.upstreamProtocol})` : ''}`],
    ['Client', s.client ?? '-'],
    ['Started', time(s.startedAt)],
    ['Ended', `${time(s.endedAt)}${s.endReason ? ` (${s.endReason}${s.exitCode !== null ? `, exit ${s.exitCode}` : ''})` : ''}`],
    ['Bytes', `in ${s.bytesIn ?? '-'}, out ${s.bytesOut ?? '-'}`],
    ...(s.castSha256 ? [['Cast sha256', s.castSha256] as [string, string]] : []),
    ...(s.rawSha256 ? [['Raw sha256', s.rawSha256] as [string, string]] : []),
    ...(s.files ?? []).map((f, i): [string, string] => [i === 0 ? 'Files' : '', `${f.name} (${f.size} B, sha256 ${f.sha256})`]),
  ];
  const width = Math.max(...lines.map(([k]) => k.length)) + 2;
  let text = lines.map(([k, v]) => `${k ? `${k}:` : ''}`.padEnd(width) + v).join('\n') + '\n';
  if (s.connections !== undefined) {
    text += `\nConnections (${s.connections.length}):\n`;
    if (s.connections.length > 0) text += connectionsTable(s.connections);
  }
  return text;
}

export async function runSessions(argv: string[], io: Partial<SessionsIo> = {}): Promise<number> {
  const out = io.stdout ?? ((t: string) => void process.stdout.write(t));
  const err = io.stderr ?? ((t: string) => void process.stderr.write(t));
  const env = io.env ?? process.env;
  let parsed;
  try {
    parsed = parseArgs({ args: argv, allowPositionals: true, strict: true, options: OPTIONS });
  } catch (e) {
    throw usage((e as Error).message);
  }
  const { values, positionals } = parsed;
  const [command, ...args] = positionals;
  if (values.help || command === 'help') {
    const one = command !== undefined && command in SYNOPSES ? SYNOPSES[command as keyof typeof SYNOPSES] : undefined;
    out(`${one !== undefined ? `usage: kube-bastion sessions ${one}\n\n${SESSIONS_OPTIONS}` : SESSIONS_USAGE}\n`);
    return 0;
  }
  if (command !== 'list' && command !== 'show' && command !== 'get') throw usage(command === undefined ? 'give a command' : `unknown command ${JSON.stringify(command)}`);
  const output = values.output ?? 'table';
  if (output !== 'table' && output !== 'json') throw usage(`-o ${JSON.stringify(output)}: give table or json`);
  const q = new URLSearchParams();
  let path: string;
  if (command === 'list') {
    if (args.length > 0) throw usage(`"sessions list" takes no arguments (got ${JSON.stringify(args.join(' '))})`);
    if (values.state !== undefined && !(SESSION_STATES as readonly string[]).includes(values.state)) throw usage(`--state ${JSON.stringify(values.state)}: give ${SESSION_STATES.join(' or ')}`);
    if (values.approval !== undefined) q.set('approval', values.approval);
    if (values.agent !== undefined) q.set('agent', values.agent);
    if (values.state !== undefined) q.set('state', values.state);
    path = `/v1/sessions${q.toString() ? `?${q}` : ''}`;
  } else {
    for (const flag of ['approval', 'agent', 'state'] as const) if (values[flag] !== undefined) throw usage(`--${flag} is not an option of "sessions ${command}"`);
    if (args.length !== 1) throw usage(`"sessions ${command}" takes one session ID`);
    path = `/v1/sessions/${encodeURIComponent(args[0]!)}`;
  }
  const { server, token, ca } = resolveControlTarget(values, env, 'kube-bastion user add NAME --role reviewer');
  let result: unknown;
  try {
    result = await client(server, token, ca).call('GET', path);
  } catch (e) {
    if (!(e instanceof ApiFailure)) throw e;
    err(`kube-bastion sessions: ${e.message}${e.field ? ` (--${e.field})` : ''}\n`);
    return 1;
  }
  if (output === 'json') {
    out(`${JSON.stringify(result, null, 2)}\n`);
    return 0;
  }
  if (command === 'list') {
    const items = (result as SessionList).items;
    if (items.length === 0) err('No sessions found.\n');
    else out(formatTable([['ID', 'STATE', 'AGENT', 'TARGET', 'STARTED', 'END', 'APPROVAL'], ...items.map(listRow)]));
    return 0;
  }
  out(formatSession(result as ApiSessionDetail));
  return 0;
}
