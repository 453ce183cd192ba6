// `kube-bastion export`: an evidence directory for an approval, a session or a time range.
//
// By default it asks the control API for the evidence archive (GET /v1/approvals/ID/evidence, or
// GET /v1/evidence?session=ID / ?since=T) and unpacks it into --out, so it needs only a reviewer's
// token and works from any machine. With --data-dir it builds the same bundle straight from a
// bastion's data directory and recordings instead (the machine the bastion runs on, no server
// needed; it signs with <data-dir>/signing/ed25519.key and records an `evidence.exported` audit row
// with actor `cli`). Either way the result is then checked exactly as `kube-bastion verify` does.
//
// Exit status: 0 exported and verified, 1 the API, the network or the verification failed,
// 2 usage (thrown as BastionError USAGE, which main prints).
import { DEFAULT_CONTROL_URL, resolveControlTarget } from './control-target.js';
import { existsSync, statSync, readdirSync } from 'node:fs';
import { mkdtemp, rename, rm } from 'node:fs/promises';
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import { basename, dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { BastionError, ErrorCode } from '../errors/index.js';
import { evidenceAuditEvent, planEvidence, storeApprovals, writeEvidenceDir, type EvidenceRequest } from '../evidence/bundle.js';
import { formatProblem, verifyEvidenceDir, type CastFormat } from '../evidence/manifest.js';
import { CAST_FORMATS } from '../model/vocabulary.js';
import type { ErrorBody } from '../api/schemas.js';
import { formatBytes, ProgressLine } from '../evidence/progress.js';
import { loadOrCreateSigningKey } from '../evidence/signing-key.js';
import { checkpointDataDir, checkpointsPath } from '../evidence/checkpoints.js';
import { unpackEvidenceTar } from '../evidence/unpack.js';
import { openStore } from '../store/index.js';


export const EXPORT_USAGE = `usage: kube-bastion export (--approval ID | --session ID | --since TIME [--until TIME]) --out DIR [--format v2|v3]
                         [--server URL] [--token TOKEN] [--ca FILE] | [--data-dir DIR [--recordings DIR]]

Writes an evidence directory (approval record, sessions, casts, raw sidecars, audit rows, and a
manifest with the SHA-256 of every file signed by the bastion's Ed25519 key), then checks it as
"kube-bastion verify DIR" does.

options:
  --approval ID     everything about one approval (its sessions, and every audit row, refused attempts too)
  --session ID      one session (and its approval's record and audit rows)
  --since TIME      every session, approval and audit row from TIME on: ISO 8601 (2025-06-02T09:00:00Z)
                    or a duration back from now (90m, 24h, 7d)
  --until TIME      with --since: up to TIME
  --out DIR         where to write the evidence (must not exist, or be an empty directory)
  --format v2|v3    convert the casts to this asciicast version (default: each as recorded)
  --server URL      control API (default $KUBE_BASTION_URL, else ${DEFAULT_CONTROL_URL})
  --token TOKEN     user token, any role (default $KUBE_BASTION_TOKEN)
  --ca FILE         CA certificate for an https --server (default $KUBE_BASTION_CA)
  --data-dir DIR    build from this bastion data directory instead of asking the server
  --recordings DIR  with --data-dir: the recordings directory (default ./recordings)
  -q, --quiet       no progress on stderr`;

export interface ExportIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  env: Record<string, string | undefined>;
  /** Whether stderr is a terminal (an updating progress line) or not (periodic lines). */
  stderrIsTTY: boolean;
  now: () => Date;
}

function usage(message: string): BastionError {
  return new BastionError(ErrorCode.USAGE, `${message}\n${EXPORT_USAGE}`);
}

const OPTIONS = {
  approval: { type: 'string' },
  session: { type: 'string' },
  since: { type: 'string' },
  until: { type: 'string' },
  out: { type: 'string' },
  format: { type: 'string' },
  server: { type: 'string' },
  token: { type: 'string' },
  ca: { type: 'string' },
  'data-dir': { type: 'string' },
  recordings: { type: 'string' },
  quiet: { type: 'boolean', short: 'q' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** ISO 8601, or a duration back from `now`: `90s`, `45m`, `24h`, `7d`, `1d12h`. */
export function parseTime(text: string, flag: string, now: Date): Date {
  const t = text.trim();
  const d = /^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/.exec(t);
  if (d && t !== '') {
    const seconds = Number(d[1] ?? 0) * 86400 + Number(d[2] ?? 0) * 3600 + Number(d[3] ?? 0) * 60 + Number(d[4] ?? 0);
    return new Date(now.getTime() - seconds * 1000);
  }
  const ms = Date.parse(t);
  if (!/^\d{4}-\d\d-\d\d/.test(t) || Number.isNaN(ms)) {
    throw usage(`${flag} ${JSON.stringify(text)}: give an ISO 8601 time (2025-06-02T09:00:00Z) or a duration back from now (90m, 24h, 7d)`);
  }
  return new Date(ms);
}

class ExportFailure extends Error {}

/** The output directory, checked: absent, or an empty directory. */
function outputDir(text: string | undefined): string {
  if (!text) throw usage('--out DIR is required');
  const out = resolve(text);
  if (existsSync(out)) {
    if (!statSync(out).isDirectory()) throw usage(`--out ${out}: exists and is not a directory`);
    if (readdirSync(out).length > 0) throw usage(`--out ${out}: not empty (verify would count the files already there as unexpected)`);
  } else if (!existsSync(dirname(out))) {
    throw usage(`--out ${out}: the parent directory does not exist`);
  }
  return out;
}

export async function runExport(argv: string[], io: Partial<ExportIo> = {}): Promise<number> {
  const out = io.stdout ?? ((t: string) => void process.stdout.write(t));
  const err = io.stderr ?? ((t: string) => void process.stderr.write(t));
  const env = io.env ?? process.env;
  const now = io.now ?? (() => new Date());
  const tty = io.stderrIsTTY ?? process.stderr.isTTY === true;

  let parsed;
  try {
    parsed = parseArgs({ args: argv, allowPositionals: true, strict: true, options: OPTIONS });
  } catch (e) {
    throw usage((e as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help) {
    out(`${EXPORT_USAGE}\n`);
    return 0;
  }
  if (positionals.length > 0) throw usage(`unexpected argument ${JSON.stringify(positionals[0])}`);
  const chosen = (['approval', 'session', 'since'] as const).filter((k) => values[k] !== undefined);
  if (chosen.length !== 1) throw usage(chosen.length === 0 ? 'say what to export: --approval ID, --session ID or --since TIME' : `give only one of --${chosen.join(', --')}`);
  for (const k of chosen) if (values[k]!.trim() === '') throw usage(`--${k} must not be empty`);
  if (values.until !== undefined && values.since === undefined) throw usage('--until goes with --since');
  const format = values.format;
  if (format !== undefined && !(CAST_FORMATS as readonly string[]).includes(format)) throw usage(`--format ${JSON.stringify(format)}: give ${CAST_FORMATS.join(' or ')}`);
  const fmt = format ? { format: format as CastFormat } : {};
  let request: EvidenceRequest;
  if (values.approval !== undefined) request = { approvalId: values.approval, ...fmt };
  else if (values.session !== undefined) request = { sessionId: values.session, ...fmt };
  else {
    const since = parseTime(values.since!, '--since', now());
    const until = values.until !== undefined ? parseTime(values.until, '--until', now()) : undefined;
    if (until && until < since) throw usage('--until is before --since');
    request = { since, ...(until ? { until } : {}), ...fmt };
  }
  const dir = outputDir(values.out);
  const local = values['data-dir'] !== undefined;
  if (!local) {
    for (const f of ['recordings'] as const) if (values[f] !== undefined) throw usage(`--${f} goes with --data-dir`);
  } else {
    for (const f of ['server', 'token', 'ca'] as const) if (values[f] !== undefined) throw usage(`--${f} is for exports through the control API; not with --data-dir`);
  }

  const progress = values.quiet ? undefined : new ProgressLine({ write: err, tty });
  const what = 'approvalId' in request ? `approval ${request.approvalId}` : 'sessionId' in request ? `session ${request.sessionId}` : `since ${request.since.toISOString()}`;

  // Everything goes into a fresh sibling directory first and is moved into place when complete.
  const tmp = await mkdtemp(join(dirname(dir), `.${basename(dir)}.partial-`));
  try {
    if (local) {
      await exportLocal(values['data-dir']!, values.recordings ?? 'recordings', request, tmp, progress);
    } else {
      await exportRemote(values, env, request, tmp, progress);
    }
    progress?.done();
    await rename(tmp, dir);
  } catch (e) {
    progress?.done();
    await rm(tmp, { recursive: true, force: true });
    if (e instanceof ExportFailure) {
      err(`kube-bastion export: ${e.message}\n`);
      return 1;
    }
    throw e;
  }

  const result = await verifyEvidenceDir(dir);
  if (!result.ok) {
    err(`kube-bastion export: wrote ${what} to ${dir}, but it does not verify:\n`);
    for (const p of result.problems) err(`${formatProblem(p)}\n`);
    return 1;
  }
  const bytes = result.manifest!.files.reduce((n, f) => n + f.size, 0);
  out(`exported ${what} to ${dir}: ${result.files} files, ${formatBytes(bytes)}, signed by key ${result.keyId}\n`);
  return 0;
}

async function exportLocal(dataDirText: string, recordingsText: string, request: EvidenceRequest, tmp: string, progress: ProgressLine | undefined): Promise<void> {
  const dataDir = resolve(dataDirText);
  if (!existsSync(join(dataDir, 'kube-bastion.db'))) throw usage(`--data-dir ${dataDir}: no kube-bastion.db there`);
  const recordingsDir = resolve(recordingsText);
  if (!existsSync(recordingsDir)) throw usage(`--recordings ${recordingsDir}: no such directory`);
  const store = openStore(dataDir);
  try {
    let plan;
    try {
      plan = await planEvidence(
        { sessions: store.sessions, approvals: storeApprovals(store.approvals), audit: store.audit, policyVersions: store.policyVersions, recordingsDir, signingKey: () => loadOrCreateSigningKey(dataDir), checkpointsFile: checkpointsPath(dataDir) },
        request,
        (p) => progress?.update('reading', p.done, p.total),
      );
    } catch (e) {
      if (e instanceof BastionError && (e.code === 'NOT_FOUND' || e.code === 'BAD_REQUEST')) throw new ExportFailure(e.message);
      throw e;
    }
    await writeEvidenceDir(plan, tmp, (p) => progress?.update('writing', p.done, p.total));
    await store.audit.append(evidenceAuditEvent(plan, 'cli'));
    await checkpointDataDir(dataDir, store.audit);
  } finally {
    await store.close();
  }
}

async function exportRemote(
  values: { server?: string; token?: string; ca?: string },
  env: Record<string, string | undefined>,
  request: EvidenceRequest,
  tmp: string,
  progress: ProgressLine | undefined,
): Promise<void> {
  const { server, token, ca } = resolveControlTarget(values, env, 'kube-bastion user add NAME --role reviewer');
  const q = new URLSearchParams();
  let path: string;
  if ('approvalId' in request) path = `/v1/approvals/${encodeURIComponent(request.approvalId)}/evidence`;
  else {
    path = '/v1/evidence';
    if ('sessionId' in request) q.set('session', request.sessionId);
    else {
      q.set('since', request.since.toISOString());
      if (request.until) q.set('until', request.until.toISOString());
    }
  }
  if (request.format) q.set('format', request.format);
  const url = `${server.href.replace(/\/+$/, '')}${path}${q.size > 0 ? `?${q}` : ''}`;

  const res = await new Promise<IncomingMessage>((resolvePromise, reject) => {
    const req = (server.protocol === 'https:' ? https : http).request(
      url,
      { method: 'GET', headers: { Authorization: `Bearer ${token}`, Accept: 'application/x-tar, application/json' }, ...(ca !== undefined ? { ca } : {}) },
      resolvePromise,
    );
    req.setTimeout(120_000, () => req.destroy(new Error('no answer in 120s')));
    req.on('error', (e: NodeJS.ErrnoException) =>
      reject(new ExportFailure(`cannot reach the control API at ${server.origin} (${e.code ?? e.message}); set --server or KUBE_BASTION_URL`)),
    );
    req.end();
  });
  if (res.statusCode !== 200) {
    const chunks: Buffer[] = [];
    for await (const c of res as AsyncIterable<Buffer>) chunks.push(c);
    const text = Buffer.concat(chunks).toString('utf8');
    let message = `HTTP ${res.statusCode}`;
    try {
      const m: unknown = (JSON.parse(text) as Partial<ErrorBody>).error?.message;
      if (typeof m === 'string') message = m;
    } catch {
      if (text) message += `: ${text.slice(0, 200)}`;
    }
    throw new ExportFailure(`${message}${res.statusCode === 401 ? ' (check --token or KUBE_BASTION_TOKEN)' : ''}`);
  }
  const type = String(res.headers['content-type'] ?? '');
  if (!/^application\/x-tar\b/.test(type)) {
    res.resume();
    throw new ExportFailure(`${url}: expected an application/x-tar evidence archive, got ${type || 'no Content-Type'}`);
  }
  const lengthHeader = res.headers['content-length'];
  const total = lengthHeader !== undefined ? Number(lengthHeader) : undefined;
  let done = 0;
  const counted = async function* (): AsyncGenerator<Buffer> {
    for await (const chunk of res as AsyncIterable<Buffer>) {
      done += chunk.length;
      progress?.update('downloading', done, total);
      yield chunk;
    }
  };
  try {
    await unpackEvidenceTar(counted(), tmp);
  } catch (e) {
    res.destroy();
    throw new ExportFailure(`the evidence archive from ${server.origin} is broken: ${(e as Error).message}`);
  }
}
