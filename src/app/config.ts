// `serve` configuration: one schema with defaults, validated once at start, then frozen.
// Every error names the flag (or file line) that caused it.
import { parseArgs } from 'node:util';
import { isIP } from 'node:net';
import { resolve } from 'node:path';
import { BastionError, ErrorCode } from '../errors/index.js';
import { LOG_LEVELS, type LogLevel } from '../observability/log.js';
import { parseListen, type ListenAddress } from '../net/address.js';
import { DECIDER_ROLES, type UserRole } from '../model/vocabulary.js';

export interface ServeConfig {
  readonly dataDir: string;
  readonly recordingsDir: string;
  readonly listen: ListenAddress;
  readonly controlListen: ListenAddress;
  readonly tls: { readonly certFile?: string; readonly keyFile?: string; readonly caFile?: string };
  readonly controlTls: { readonly certFile?: string; readonly keyFile?: string };
  /** Extra DNS names / IPs for the generated serving certificate. */
  readonly tlsSans: readonly string[];
  /** The URL agents' kubeconfigs point at; undefined: derived from the bound address. */
  readonly publicUrl?: string;
  readonly upstreamKubeconfig?: string;
  readonly upstreamContext?: string;
  readonly impersonate: boolean;
  readonly policyFile?: string;
  readonly logLevel: LogLevel;
  readonly shutdownGraceSeconds: number;
  /** How long a request that needs an approval is held waiting for a decision. */
  readonly holdTimeoutSeconds: number;
  /** How long a pending approval stays pending once every client waiting on it has gone. */
  readonly abandonGraceSeconds: number;
  readonly maxPendingPerAgent: number;
  /** JSON POST here when an approval becomes pending. */
  readonly webhookUrl?: string;
  /** Each signed audit checkpoint is also POSTed here (best effort). */
  readonly checkpointWebhookUrl?: string;
  /** Write an audit checkpoint at least this often while the head moves (seconds). */
  readonly checkpointIntervalSeconds: number;
  /** Warn the agent this many seconds before its approval expires (0: no warning). */
  readonly expiryWarningSeconds: number;
  /** How long a stream session's setup may take: the agent opening its streams, the upstream dial. */
  readonly sessionSetupSeconds: number;
  /** Roles whose users may approve requests of (and grant to) agents they own; default none. */
  readonly ownerMayApprove: readonly UserRole[];
  /** Unauthenticated and malformed requests: rows per address, and the aggregate row's interval. */
  readonly auditFailures: { readonly burst: number; readonly perMinute: number; readonly intervalSeconds: number };
}

export const SERVE_USAGE = `usage: kube-bastion serve [options]

  --data-dir DIR               database, TLS material, issued kubeconfigs (default ./data)
  --recordings DIR             session recordings (default ./recordings)
  --listen HOST:PORT           Kubernetes endpoint, always TLS (default 127.0.0.1:6443)
  --control-listen HOST:PORT   control API, UI, /metrics, /healthz (default 127.0.0.1:8080)
  --tls-cert FILE --tls-key FILE [--tls-ca FILE]
                               serve the Kubernetes endpoint with these instead of the generated CA
  --tls-san NAME               extra DNS name or IP for the generated certificate (repeatable)
  --control-tls-cert FILE --control-tls-key FILE
                               TLS for the control endpoint (required unless it listens on loopback)
  --public-url URL             server URL written into agent kubeconfigs (default https://<listen>)
  --upstream-kubeconfig FILE   the real cluster; without it the embedded simulated cluster starts
  --upstream-context NAME      context in that kubeconfig (default: its current-context)
  --impersonate                send Impersonate-User: kube-bastion:agent:<name> upstream
  --policy FILE                policy YAML (default: the built-in policy); reloaded on change and SIGHUP
  --log-level LEVEL            ${LOG_LEVELS.join('|')} (default info)
  --shutdown-grace SECONDS     on SIGTERM, how long requests in flight may finish (default 10)
  --hold-timeout SECONDS       how long a request that needs an approval waits for a decision (default 120)
  --abandon-grace SECONDS      when every client waiting on a pending approval has gone, how long it stays
                               pending for one to come back before it ends abandoned (default 30)
  --max-pending-per-agent N    pending approvals one agent may have at once (default 5)
  --webhook URL                POST a JSON notice here when an approval becomes pending
  --checkpoint-webhook URL     POST every signed audit checkpoint here too (a copy outside the data dir)
  --checkpoint-interval SECONDS
                               sign the audit head at least this often while it moves (default 60); also
                               at every approval decision, session end, start and stop
  --expiry-warning SECONDS     tell the agent's terminal this long before its approval expires (default 0: off)
  --session-setup-timeout SECONDS
                               how long a session's setup may take (the client opening its streams, the
                               upstream dial) before it is abandoned (default 10)
  --owner-may-approve ROLES    roles (${DECIDER_ROLES.join(',')}) whose users may approve requests of agents
                               they own (default nobody: an agent's owner never decides for it)
  --audit-failure-burst N      unauthenticated or malformed requests from one address (an IPv6 /64) that get
                               their own audit row before the rate applies (default 10)
  --audit-failure-rate N       such rows per minute per address after the burst (default 6); the rest are
                               counted into one aggregate row per address per interval. All addresses
                               together: ten times the burst and rate
  --audit-failure-interval SECONDS
                               how long one aggregate row covers (default 60)`;

function usage(message: string): BastionError {
  return new BastionError(ErrorCode.USAGE, message);
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}

export function parseServeConfig(argv: string[], cwd = process.cwd()): ServeConfig {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: {
      'data-dir': { type: 'string', default: 'data' },
      recordings: { type: 'string', default: 'recordings' },
      listen: { type: 'string', default: '127.0.0.1:6443' },
      'control-listen': { type: 'string', default: '127.0.0.1:8080' },
      'tls-cert': { type: 'string' },
      'tls-key': { type: 'string' },
      'tls-ca': { type: 'string' },
      'tls-san': { type: 'string', multiple: true, default: [] },
      'control-tls-cert': { type: 'string' },
      'control-tls-key': { type: 'string' },
      'public-url': { type: 'string' },
      'upstream-kubeconfig': { type: 'string' },
      'upstream-context': { type: 'string' },
      impersonate: { type: 'boolean', default: false },
      policy: { type: 'string' },
      'log-level': { type: 'string', default: 'info' },
      'shutdown-grace': { type: 'string', default: '10' },
      'hold-timeout': { type: 'string', default: '120' },
      'abandon-grace': { type: 'string', default: '30' },
      'max-pending-per-agent': { type: 'string', default: '5' },
      webhook: { type: 'string' },
      'checkpoint-webhook': { type: 'string' },
      'checkpoint-interval': { type: 'string', default: '60' },
      'expiry-warning': { type: 'string', default: '0' },
      'session-setup-timeout': { type: 'string', default: '10' },
      'owner-may-approve': { type: 'string', default: 'nobody' },
      'audit-failure-burst': { type: 'string', default: '10' },
      'audit-failure-rate': { type: 'string', default: '6' },
      'audit-failure-interval': { type: 'string', default: '60' },
    },
  });
  const listen = parseListen('--listen', values.listen);
  const controlListen = parseListen('--control-listen', values['control-listen']);
  if (!LOG_LEVELS.includes(values['log-level'] as LogLevel)) throw usage(`--log-level: expected one of ${LOG_LEVELS.join(', ')}, got "${values['log-level']}"`);
  const grace = Number(values['shutdown-grace']);
  if (!Number.isFinite(grace) || grace < 0 || grace > 3600) throw usage(`--shutdown-grace: expected seconds between 0 and 3600, got "${values['shutdown-grace']}"`);
  const holdTimeout = wholeNumber('--hold-timeout', values['hold-timeout'], 1, 86_400);
  const abandonGrace = wholeNumber('--abandon-grace', values['abandon-grace'], 1, 86_400);
  const maxPending = wholeNumber('--max-pending-per-agent', values['max-pending-per-agent'], 1, 10_000);
  const expiryWarning = wholeNumber('--expiry-warning', values['expiry-warning'], 0, 86_400);
  const sessionSetup = wholeNumber('--session-setup-timeout', values['session-setup-timeout'], 1, 300);
  const ownerMayApprove = ownerRoles(values['owner-may-approve']);
  const auditFailures = {
    burst: wholeNumber('--audit-failure-burst', values['audit-failure-burst'], 0, 100_000),
    perMinute: wholeNumber('--audit-failure-rate', values['audit-failure-rate'], 0, 600_000),
    intervalSeconds: wholeNumber('--audit-failure-interval', values['audit-failure-interval'], 1, 3600),
  };
  for (const flag of ['webhook', 'checkpoint-webhook'] as const) {
    const url = values[flag];
    if (url !== undefined && !/^https?:\/\/[^\s]+$/.test(url)) throw usage(`--${flag}: expected an http:// or https:// URL, got "${url}"`);
  }
  const checkpointInterval = wholeNumber('--checkpoint-interval', values['checkpoint-interval'], 1, 60);
  if (Boolean(values['control-tls-cert']) !== Boolean(values['control-tls-key'])) throw usage('--control-tls-cert and --control-tls-key go together');
  if (!isLoopback(controlListen.host) && !values['control-tls-cert']) {
    throw usage(`--control-listen ${values['control-listen']}: the control endpoint may be plain HTTP only on loopback; give --control-tls-cert and --control-tls-key`);
  }
  if (values['upstream-context'] && !values['upstream-kubeconfig']) throw usage('--upstream-context needs --upstream-kubeconfig');
  for (const san of values['tls-san']) {
    if (!isIP(san) && !/^[a-z0-9*]([-a-z0-9.]*[a-z0-9])?$/i.test(san)) throw usage(`--tls-san: "${san}" is neither an IP address nor a DNS name`);
  }
  let publicUrl = values['public-url'];
  if (publicUrl !== undefined) {
    let u: URL;
    try {
      u = new URL(publicUrl);
    } catch {
      throw usage(`--public-url: "${publicUrl}" is not a URL`);
    }
    if (u.protocol !== 'https:') throw usage('--public-url must be https:// (kubectl sends tokens only over TLS)');
    publicUrl = publicUrl.replace(/\/+$/, '');
  }
  const config: ServeConfig = {
    dataDir: resolve(cwd, values['data-dir']),
    recordingsDir: resolve(cwd, values.recordings),
    listen,
    controlListen,
    tls: {
      ...(values['tls-cert'] ? { certFile: resolve(cwd, values['tls-cert']) } : {}),
      ...(values['tls-key'] ? { keyFile: resolve(cwd, values['tls-key']) } : {}),
      ...(values['tls-ca'] ? { caFile: resolve(cwd, values['tls-ca']) } : {}),
    },
    controlTls: {
      ...(values['control-tls-cert'] ? { certFile: resolve(cwd, values['control-tls-cert']) } : {}),
      ...(values['control-tls-key'] ? { keyFile: resolve(cwd, values['control-tls-key']) } : {}),
    },
    tlsSans: values['tls-san'],
    ...(publicUrl ? { publicUrl } : {}),
    ...(values['upstream-kubeconfig'] ? { upstreamKubeconfig: resolve(cwd, values['upstream-kubeconfig']) } : {}),
    ...(values['upstream-context'] ? { upstreamContext: values['upstream-context'] } : {}),
    impersonate: values.impersonate,
    ...(values.policy ? { policyFile: resolve(cwd, values.policy) } : {}),
    logLevel: values['log-level'] as LogLevel,
    shutdownGraceSeconds: grace,
    holdTimeoutSeconds: holdTimeout,
    abandonGraceSeconds: abandonGrace,
    maxPendingPerAgent: maxPending,
    ...(values.webhook ? { webhookUrl: values.webhook } : {}),
    ...(values['checkpoint-webhook'] ? { checkpointWebhookUrl: values['checkpoint-webhook'] } : {}),
    checkpointIntervalSeconds: checkpointInterval,
    expiryWarningSeconds: expiryWarning,
    sessionSetupSeconds: sessionSetup,
    ownerMayApprove,
    auditFailures,
  };
  return deepFreeze(config);
}

/** `nobody`, or a comma list of the roles that decide approvals. */
function ownerRoles(value: string): UserRole[] {
  if (value.trim() === 'nobody') return [];
  const roles = value.split(',').map((r) => r.trim());
  for (const r of roles) {
    if (!(DECIDER_ROLES as readonly string[]).includes(r)) {
      throw usage(`--owner-may-approve: "${r}" is not a role that decides approvals; give nobody or a comma list of ${DECIDER_ROLES.join(', ')}`);
    }
  }
  return [...new Set(roles)] as UserRole[];
}

function wholeNumber(flag: string, value: string, min: number, max: number): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < min || n > max) throw usage(`${flag}: expected a whole number from ${min} to ${max}, got "${value}"`);
  return n;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}
