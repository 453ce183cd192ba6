// @ts-check
// kube-bastion web UI: approvers decide pending approvals; reviewers read an approval's record and
// replay its sessions (asciinema-player) next to it. Plain ES module, no build step, no framework.
//
// Security rules kept throughout this file:
//  - The user token lives in sessionStorage (this tab only) and travels only as an Authorization
//    header on same-origin fetches; never in a URL, never in a cookie.
//  - Every piece of API data reaches the DOM as text (textContent / Text nodes / setAttribute on
//    attributes we choose); nothing is parsed as HTML. Links are built from encodeURIComponent'd ids.
//  - The page's CSP (src/api/web-ui.ts) allows only same-origin scripts, styles and connections.
//
// The lists and limits come from the model (/ui/vocabulary.js is generated from it) and the API's
// shapes are the types of the schemas the control API validates with: web/tsconfig.json checks
// this file against them (npm run typecheck).

import { APPROVAL_STATES, DECIDER_ROLES, MAX_REASON_LENGTH, MAX_TTL_SECONDS, SESSION_STATES } from './vocabulary.js';

/** @typedef {import('../src/model/approval-schema.js').Approval} Approval */
/** @typedef {import('../src/model/approval-schema.js').ApprovalScope} ApprovalScope */
/** @typedef {import('../src/model/approval-schema.js').ApproveBody} ApproveBody */
/** @typedef {import('../src/model/approval-schema.js').HeldRequestInfo} HeldRequestInfo */
/** @typedef {import('../src/model/approval-schema.js').RiskSummary} RiskSummary */
/** @typedef {import('../src/model/approval-schema.js').DenyBody} DenyBody */
/** @typedef {import('../src/model/approval-schema.js').RevokeBody} RevokeBody */
/** @typedef {import('../src/api/schemas.js').ErrorBody} ErrorBody */
/** @typedef {import('../src/api/schemas.js').ApiUser} User */
/** @typedef {import('../src/api/schemas.js').ApiSession} Session */
/** @typedef {import('../src/api/schemas.js').ApiSessionDetail} SessionDetail */
/** @typedef {import('../src/model/forward.js').ForwardedConnection} ForwardedConnection */
/** @typedef {import('../src/model/review-record-schema.js').ReviewConnection} ReviewConnection */
/** @typedef {import('../src/api/schemas.js').ApprovalList} ApprovalList */
/** @typedef {import('../src/api/schemas.js').SessionList} SessionList */
/** @typedef {import('../src/model/review-record-schema.js').ReviewRecord} ReviewRecord */
/** @typedef {{ body?: ApproveBody | DenyBody | RevokeBody, token?: string | null, accept?: string }} ApiOptions */

const TOKEN_KEY = 'kube-bastion.token';
const REFRESH_MS = 5000;

/** `list.includes(v)` for a value that may be outside the list. */
function oneOf(/** @type {readonly string[]} */ list, /** @type {unknown} */ v) {
  return typeof v === 'string' && list.includes(v);
}

const main = /** @type {HTMLElement} */ (document.getElementById('main'));
const flashBox = /** @type {HTMLElement} */ (document.getElementById('flash'));

/** The signed-in user once /v1/whoami answered. @type {User | null} */
let me = null;
/** Bumped on every navigation: an async render that finds it changed has been superseded. */
let viewSeq = 0;
/** Cleanups of the current view (timers, the player). */
let cleanups = [];

// ---------------------------------------------------------------------------------------------
// API

class ApiError extends Error {
  constructor(status, code, message, field) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field;
  }
}

function getToken() {
  return sessionStorage.getItem(TOKEN_KEY);
}

/**
 * A same-origin call with the bearer token; throws ApiError for anything but 2xx.
 * @param {'GET' | 'POST'} method
 * @param {string} path
 * @param {ApiOptions} [opts]
 */
async function api(method, path, { body, token = getToken(), accept = 'application/json' } = {}) {
  if (!token) throw new ApiError(401, 'UNAUTHENTICATED', 'Sign in with a user token.');
  /** @type {Record<string, string>} */
  const headers = { Authorization: `Bearer ${token}`, Accept: accept };
  /** @type {RequestInit} */
  const init = { method, headers, cache: 'no-store', credentials: 'omit', redirect: 'error', referrerPolicy: 'no-referrer' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (err) {
    throw new ApiError(0, 'NETWORK', `Could not reach the bastion (${err instanceof Error ? err.message : String(err)}).`);
  }
  if (!res.ok) throw await problemOf(res);
  return res;
}

/**
 * The JSON answer, typed by the caller as the API documents it.
 * @template T
 * @param {'GET' | 'POST'} method
 * @param {string} path
 * @param {ApiOptions} [opts]
 * @returns {Promise<T>}
 */
async function apiJson(method, path, opts) {
  return (await api(method, path, opts)).json();
}

/** @param {Response} res */
async function problemOf(res) {
  let code = `HTTP_${res.status}`;
  let message = res.statusText || 'request failed';
  let field;
  try {
    /** @type {Partial<ErrorBody> | null} */
    const body = await res.json();
    if (body && typeof body.error === 'object' && body.error) {
      if (typeof body.error.code === 'string') code = body.error.code;
      if (typeof body.error.message === 'string') message = body.error.message;
      if (typeof body.error.field === 'string') field = body.error.field;
    }
  } catch {
    // not JSON: keep the status text
  }
  return new ApiError(res.status, code, message, field);
}

/** The words shown for an API error; 401 and 403 say plainly what happened. */
function describeError(err) {
  if (!(err instanceof ApiError)) return `Something went wrong: ${err instanceof Error ? err.message : String(err)}`;
  if (err.status === 401) return `Not signed in (401 ${err.code}): ${err.message}`;
  if (err.status === 403) return `Not allowed (403 ${err.code}): ${err.message}`;
  if (err.status === 0) return err.message;
  return `${err.status} ${err.code}: ${err.message}${err.field ? ` (field: ${err.field})` : ''}`;
}

/** A 401 anywhere ends the sign-in: the token is unknown, disabled or gone. */
function isSignedOut(err) {
  return err instanceof ApiError && err.status === 401;
}

function signOut(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  me = null;
  showUser();
  renderLogin(message);
}

// ---------------------------------------------------------------------------------------------
// DOM helpers: text only, never HTML

/** h('a', {href, class}, 'text', node, [more]) — strings become Text nodes. */
function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') el.className = value;
    else if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else if (value === true) el.setAttribute(key, '');
    else el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

let idSeq = 0;
function uid(prefix) {
  idSeq += 1;
  return `${prefix}-${idSeq}`;
}

function flash(message, kind = 'ok') {
  flashBox.className = `flash ${kind}`;
  flashBox.textContent = message;
}

function clearFlash() {
  flashBox.className = 'flash';
  flashBox.textContent = '';
}

function errorBox(err) {
  return h('p', { class: 'error', role: 'alert' }, describeError(err));
}

const href = {
  approvals: (query = {}) => {
    const q = new URLSearchParams(Object.entries(query).filter(([, v]) => v));
    return `#/approvals${q.size ? `?${q}` : ''}`;
  },
  approval: (id) => `#/approvals/${encodeURIComponent(id)}`,
  session: (id) => `#/sessions/${encodeURIComponent(id)}`,
};

function isDecider() {
  return me !== null && oneOf(DECIDER_ROLES, me.role);
}

function timeEl(iso) {
  if (!iso) return h('span', { class: 'muted' }, '—');
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return h('span', {}, iso);
  return h('time', { datetime: iso, title: iso }, d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'medium' }), ' ', h('span', { class: 'muted' }, `(${relative(d)})`));
}

function relative(date) {
  const s = Math.round((date.getTime() - Date.now()) / 1000);
  const a = Math.abs(s);
  if (a < 5) return 'just now';
  const text = a < 60 ? `${a}s` : a < 3600 ? `${Math.floor(a / 60)}m ${a % 60}s` : a < 86400 ? `${Math.floor(a / 3600)}h ${Math.floor((a % 3600) / 60)}m` : `${Math.floor(a / 86400)}d ${Math.floor((a % 86400) / 3600)}h`;
  return s >= 0 ? `in ${text}` : `${text} ago`;
}

function seconds(n) {
  if (typeof n !== 'number') return '—';
  if (n % 3600 === 0) return `${n / 3600}h (${n} s)`;
  if (n % 60 === 0) return `${n / 60}m (${n} s)`;
  return `${n} s`;
}

/** 90s, 10m, 2h, 1h30m, 1d, or whole seconds (as the CLI takes them); undefined when malformed. */
function parseDuration(text) {
  const t = text.trim();
  if (/^\d+$/.test(t)) return Number(t);
  const m = /^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/.exec(t);
  if (!m || t === '') return undefined;
  const [, d = '0', hh = '0', mm = '0', ss = '0'] = m;
  return Number(d) * 86400 + Number(hh) * 3600 + Number(mm) * 60 + Number(ss);
}

/** @param {string} state an approval's or a session's */
function badge(state) {
  return h('span', { class: `badge state-${oneOf(APPROVAL_STATES, state) || oneOf(SESSION_STATES, state) ? state : 'unknown'}` }, state);
}

/**
 * A pending approval's state, saying so when every client waiting on it has gone (it is abandoned
 * after the grace unless one comes back). @param {Approval} a
 */
function stateCell(a) {
  if (a.state !== 'pending' || !a.nobodyWaitingSince) return badge(a.state);
  return [badge(a.state), ' ', h('span', { class: 'nobody-waiting' }, 'nobody waiting since ', timeEl(a.nobodyWaitingSince))];
}

/** @param {ApprovalScope} scope */
function scopeSummary(scope) {
  if (!scope || typeof scope !== 'object') return '—';
  if (scope.kind === 'stream') {
    // A port-forward reaches the pod (no container) and names its ports (none while its approver has not).
    let s = `${(scope.verbs ?? []).join(',')} ${scope.pod}${scope.container !== undefined ? ` -c ${scope.container}` : ''} -n ${scope.namespace}`;
    if (scope.verbs?.includes('portforward')) s += ` ports=${scope.ports ? scope.ports.join(',') : 'none'}`;
    if (scope.maxSessions) s += ` max-sessions=${scope.maxSessions}`;
    // The command itself, not a count (cut when long; the record lists every command whole).
    if (scope.commands?.length) {
      const first = argv(scope.commands[0]);
      s += ` -- ${first.length > 48 ? `${first.slice(0, 47)}…` : first}${scope.commands.length > 1 ? ` (+${scope.commands.length - 1} more)` : ''}`;
    }
    return s;
  }
  if (scope.kind === 'rest') {
    const extra = [scope.request ? 'exact-request' : '', scope.maxUses !== undefined ? `max-uses=${scope.maxUses}` : ''];
    return [scope.verb, scope.resource, scope.name, scope.namespace ? `-n ${scope.namespace}` : '', ...extra].filter(Boolean).join(' ');
  }
  return JSON.stringify(scope);
}

function argv(command) {
  return command.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}

function rows(pairs) {
  return h(
    'dl',
    { class: 'record' },
    pairs.filter(Boolean).map(([k, v]) => [h('dt', {}, k), h('dd', {}, v === null || v === undefined || v === '' ? h('span', { class: 'muted' }, '—') : v)]),
  );
}

/** @param {ApprovalScope} scope */
function scopeDetails(scope) {
  if (scope?.kind === 'stream') {
    return rows([
      ['Kind', 'stream (exec / attach / port-forward)'],
      ['Namespace', scope.namespace],
      ['Pod', scope.pod],
      ['Container', scope.container ?? 'none: a port-forward reaches the pod'],
      ['Verbs', (scope.verbs ?? []).join(', ')],
      scope.verbs?.includes('exec') && ['Commands', scope.commands ? h('ul', { class: 'plain' }, scope.commands.map((c) => h('li', {}, h('code', {}, argv(c))))) : 'any command'],
      scope.verbs?.includes('portforward') && ['Ports', scope.ports ? scope.ports.join(', ') : h('span', { class: 'warn' }, 'none named yet: its approver names them')],
      ['Max sessions', scope.maxSessions ?? 'unlimited until expiry'],
    ]);
  }
  if (scope?.kind === 'rest') {
    return rows([
      ['Kind', 'REST call'],
      ['Verb', scope.verb],
      ['Resource', scope.resource],
      ['Namespace', scope.namespace || '(cluster-scoped)'],
      ['Name', scope.name || '(any / collection)'],
      ['Request', scope.request ? [h('code', {}, `${scope.request.method} ${scope.request.path}${scope.request.query ? `?${scope.request.query}` : ''}`), h('br'), 'body sha256: ', h('code', {}, scope.request.bodySha256 ?? 'none (no body)'), h('br'), 'Content-Type: ', h('code', {}, boundHeader(scope.request.contentType)), h('br'), 'Content-Encoding: ', h('code', {}, boundHeader(scope.request.contentEncoding))] : 'any request of this shape (any body)'],
      ['Max uses', scope.maxUses ?? 'unlimited until expiry'],
    ]);
  }
  return h('code', {}, JSON.stringify(scope));
}

/**
 * A header a REST binding names: `none` without it; `(not recorded)` on a binding made before the
 * media type was bound (it covers no request). @param {string | null | undefined} v
 */
function boundHeader(v) {
  return v === undefined ? '(not recorded)' : (v ?? 'none');
}

/** The held request's target: method, path, canonical query. @param {HeldRequestInfo} r */
function requestTarget(r) {
  return `${r.method} ${r.path}${r.query ? `?${r.query}` : ''}`;
}

/** How many high findings a risk summary has. @param {RiskSummary | undefined} risk */
function highCount(risk) {
  return risk ? risk.findings.filter((f) => f.level === 'high').length : 0;
}

/** A risk summary: what the body is, then every finding with its level. @param {RiskSummary} risk */
function riskList(risk) {
  return h(
    'div',
    { class: 'risk' },
    h('p', {}, h('strong', {}, risk.subject), risk.patch ? h('span', { class: 'muted' }, ' (a patch: best effort)') : null),
    h('ul', { class: 'plain findings' }, risk.findings.map((f) => h('li', { class: `risk-${f.level}` }, h('span', { class: 'level' }, f.level), ' ', f.text))),
  );
}

/** A held body: its facts, then the text as the approver may see it. @param {NonNullable<HeldRequestInfo['body']>} b */
function bodyBlock(b) {
  const facts = [`${b.bytes} bytes`, b.contentType ?? 'no content type', b.redacted ? 'secret values redacted' : '', b.truncated ? 'shown truncated' : ''].filter(Boolean).join(', ');
  return [
    h('p', { class: 'muted' }, facts, h('br'), 'sha256 ', h('code', {}, b.sha256)),
    b.text === null ? h('p', { class: 'warn' }, 'The body is not shown (it cannot be shown safely).') : h('pre', { class: 'body' }, b.text),
  ];
}

/** The whole approval record, every field the API gives. @param {Approval} a */
function approvalRecord(a) {
  return rows([
    ['ID', h('code', {}, a.id)],
    ['State', stateCell(a)],
    ['Agent', [a.agent, ' ', h('span', { class: 'muted' }, `(${a.agentId})`)]],
    ['Scope', scopeDetails(a.scope)],
    a.request && ['Request', [h('code', {}, requestTarget(a.request)), a.request.command ? [h('br'), 'command: ', h('code', {}, argv(a.request.command))] : '']],
    a.request?.client && ['Client', h('code', {}, a.request.client)],
    a.request?.rule && ['Rule', [h('code', {}, a.request.rule), a.request.policyHash ? [' ', h('span', { class: 'muted' }, `policy sha256:${a.request.policyHash.slice(0, 12)}`)] : '']],
    a.request?.risk && ['Risk', riskList(a.request.risk)],
    a.request?.body && ['Body', bodyBlock(a.request.body)],
    ['Requested by', a.requestedBy],
    ['Decided by', a.decidedBy],
    ['Reason', a.reason],
    ['TTL', seconds(a.ttlSeconds)],
    ['Created', timeEl(a.createdAt)],
    ['Decided', timeEl(a.decidedAt)],
    ['Expires', timeEl(a.expiresAt)],
    ['Revoked', a.revokedAt ? [timeEl(a.revokedAt), a.revokedBy ? ` by ${a.revokedBy}` : ''] : null],
    [a.scope?.kind === 'rest' ? 'Requests forwarded' : 'Sessions started', String(a.sessionsStarted ?? 0)],
    ['Decisions', decisionsTable(a.decisions ?? [])],
  ]);
}

/**
 * The append-only decision history, oldest first: who decided what, when, and why.
 * @param {Approval['decisions']} decisions
 */
function decisionsTable(decisions) {
  if (!decisions.length) return h('span', { class: 'muted' }, 'none yet');
  return h(
    'table',
    { class: 'decisions' },
    h('caption', { class: 'visually-hidden' }, `${decisions.length} decisions, oldest first`),
    h('thead', {}, h('tr', {}, ['Decision', 'By', 'At', 'Reason', 'Valid until'].map((c) => h('th', { scope: 'col' }, c)))),
    h(
      'tbody',
      {},
      decisions.map((d) =>
        h(
          'tr',
          { 'data-kind': d.kind },
          h('td', {}, d.kind),
          h('td', {}, d.by),
          h('td', {}, timeEl(d.at)),
          h('td', {}, d.reason ?? h('span', { class: 'muted' }, '—')),
          h('td', {}, d.expiresAt ? timeEl(d.expiresAt) : h('span', { class: 'muted' }, '—')),
        ),
      ),
    ),
  );
}

/**
 * Buttons for the decisions the approval's state allows (approvers and admins only).
 * @param {Approval} a
 */
function decisionButtons(a, { withId = false } = {}) {
  if (!isDecider()) return [];
  const label = (verb) => (withId ? { 'aria-label': `${verb} ${a.id}` } : {});
  if (a.state === 'pending') {
    return [
      h('button', { type: 'button', class: 'approve', id: `approve-${a.id}`, ...label('Approve'), onclick: (e) => openDecision('approve', a, e.currentTarget) }, 'Approve'),
      h('button', { type: 'button', class: 'deny', id: `deny-${a.id}`, ...label('Deny'), onclick: (e) => openDecision('deny', a, e.currentTarget) }, 'Deny'),
    ];
  }
  if (a.state === 'approved') {
    return [h('button', { type: 'button', class: 'revoke', id: `revoke-${a.id}`, ...label('Revoke'), onclick: (e) => openDecision('revoke', a, e.currentTarget) }, 'Revoke')];
  }
  return [];
}

// ---------------------------------------------------------------------------------------------
// Decisions: one modal dialog per action

const DECISIONS = {
  approve: { title: 'Approve', verb: 'approved' },
  deny: { title: 'Deny', verb: 'denied' },
  revoke: { title: 'Revoke', verb: 'revoked' },
};

/**
 * @param {'approve' | 'deny' | 'revoke'} kind
 * @param {Approval} a
 * @param {HTMLElement} opener
 */
function openDecision(kind, a, opener) {
  const spec = DECISIONS[kind];
  const titleId = uid('dlg-title');
  const errorId = uid('dlg-error');
  const ttlId = uid('ttl');
  const ttlHintId = uid('ttl-hint');
  const reasonId = uid('reason');
  const error = h('p', { class: 'error', id: errorId, role: 'alert' });
  const ttl = kind === 'approve' ? h('input', { id: ttlId, name: 'ttl', type: 'text', inputmode: 'text', autocomplete: 'off', placeholder: 'as requested', 'aria-describedby': ttlHintId }) : null;
  // A held REST request: approved for exactly that request, once, unless the approver widens it.
  const widen = kind === 'approve' && a.scope?.kind === 'rest' && a.scope.request ? widenFields() : null;
  // A held port-forward: its approver names the pod ports (kubectl names them only inside the stream).
  const ports = kind === 'approve' && a.scope?.kind === 'stream' && a.scope.verbs?.includes('portforward') ? portsField(a.scope.ports) : null;
  const reason = h('input', { id: reasonId, name: 'reason', type: 'text', autocomplete: 'off', maxlength: String(MAX_REASON_LENGTH), required: kind === 'deny', 'aria-required': kind === 'deny' ? 'true' : null });
  const confirm = h('button', { type: 'submit', class: kind }, spec.title);
  const cancel = h('button', { type: 'button', onclick: () => dialog.close() }, 'Cancel');
  const form = h(
    'form',
    { novalidate: true },
    h('h2', { id: titleId }, `${spec.title} ${a.id}?`),
    rows([
      ['Agent', a.agent],
      ['Scope', scopeSummary(a.scope)],
      a.request?.command && ['Command', h('code', {}, argv(a.request.command))],
      a.request && a.scope?.kind === 'rest' && ['Request', h('code', {}, requestTarget(a.request))],
      ['Requested by', a.requestedBy],
    ]),
    kind === 'approve' && a.nobodyWaitingSince ? h('p', { class: 'warn' }, 'Nobody is waiting for this request any more: the client went away. Approving lets a retry of it through.') : null,
    kind === 'approve' && a.request?.risk ? riskList(a.request.risk) : null,
    kind === 'approve' && a.request?.body ? h('details', { class: 'body' }, h('summary', {}, 'Body'), bodyBlock(a.request.body)) : null,
    widen?.fields,
    ports?.field,
    kind === 'revoke' ? h('p', { class: 'warn' }, 'Revoking cuts the sessions running under this approval at once.') : null,
    ttl && h('div', { class: 'field' }, h('label', { for: ttlId }, 'Valid for (optional)'), ttl, h('p', { class: 'hint', id: ttlHintId }, 'From now: 90s, 10m, 2h, 1h30m, 1d or seconds; at most 1d. Empty: the validity the request carried.')),
    h('div', { class: 'field' }, h('label', { for: reasonId }, kind === 'deny' ? 'Reason (required)' : 'Reason (optional)'), reason),
    error,
    h('div', { class: 'buttons' }, confirm, cancel),
  );
  const dialog = h('dialog', { 'aria-labelledby': titleId, class: 'decision' }, form);
  form.addEventListener('input', (e) => {
    if (e.target instanceof HTMLElement && e.target.getAttribute('aria-invalid')) {
      e.target.removeAttribute('aria-invalid');
      error.textContent = '';
    }
  });

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    error.textContent = '';
    /** @type {ApproveBody} */
    const body = {};
    if (ttl && ttl.value.trim() !== '') {
      const n = parseDuration(ttl.value);
      if (n === undefined || n < 1 || n > MAX_TTL_SECONDS) {
        error.textContent = 'Valid for: give a duration such as 90s, 10m, 1h30m or 1d (at most 1d), or leave it empty.';
        ttl.setAttribute('aria-invalid', 'true');
        ttl.focus();
        return;
      }
      body.ttlSeconds = n;
    }
    const r = reason.value.trim();
    if (kind === 'deny' && r === '') {
      error.textContent = 'Reason: say why the request is denied; the agent sees it.';
      reason.setAttribute('aria-invalid', 'true');
      reason.focus();
      return;
    }
    if (r !== '') body.reason = r;
    if (widen) {
      const w = widen.read();
      if (w.error) {
        error.textContent = w.error;
        widen.uses.setAttribute('aria-invalid', 'true');
        widen.uses.focus();
        return;
      }
      if (w.scope) body.scope = w.scope;
      if (w.uses !== undefined) body.uses = w.uses;
    }
    if (ports) {
      const p = ports.read();
      if (p.error !== undefined) {
        error.textContent = p.error;
        ports.input.setAttribute('aria-invalid', 'true');
        ports.input.focus();
        return;
      }
      body.ports = p.ports;
    }
    confirm.disabled = true;
    cancel.disabled = true;
    try {
      /** @type {Approval} */
      const updated = await apiJson('POST', `/v1/approvals/${encodeURIComponent(a.id)}/${kind}`, { body });
      dialog.close();
      flash(`${updated.id} ${spec.verb}${updated.expiresAt && updated.state === 'approved' ? `, valid until ${new Date(updated.expiresAt).toLocaleString()}` : ''}.`);
      void route({ keepFocus: true });
    } catch (err) {
      if (isSignedOut(err)) {
        dialog.close();
        signOut(describeError(err));
        return;
      }
      error.textContent = describeError(err);
      confirm.disabled = false;
      cancel.disabled = false;
    }
  });
  dialog.addEventListener('close', () => {
    dialog.remove();
    if (opener && opener.isConnected) opener.focus();
  });
  document.body.append(dialog);
  dialog.showModal();
  (ports?.input ?? ttl ?? reason).focus();
}

/**
 * The approve dialog's ports of a held port-forward, prefilled with the ports the request named.
 * @param {number[] | undefined} requested
 */
function portsField(requested) {
  const id = uid('ports');
  const hintId = uid('ports-hint');
  const input = h('input', { id, name: 'ports', type: 'text', inputmode: 'numeric', autocomplete: 'off', required: true, 'aria-required': 'true', placeholder: 'e.g. 8080, 5432', 'aria-describedby': hintId });
  if (requested?.length) input.value = requested.join(', ');
  const field = h(
    'div',
    { class: 'field' },
    h('label', { for: id }, 'Pod ports (required)'),
    input,
    h('p', { class: 'hint', id: hintId }, 'The pod ports its connections may reach, separated by commas; a connection to any other port is refused and listed in the record.'),
  );
  const read = () => {
    const parts = input.value.split(',').map((p) => p.trim()).filter((p) => p !== '');
    if (parts.length === 0) return { error: 'Pod ports: name the pod ports this port-forward may reach.' };
    if (parts.some((p) => !/^\d+$/.test(p) || Number(p) < 1 || Number(p) > 65535)) return { error: 'Pod ports: give TCP ports from 1 to 65535, separated by commas.' };
    const list = parts.map(Number);
    if (new Set(list).size !== list.length) return { error: 'Pod ports: a port is named twice.' };
    return { ports: list };
  };
  return { field, input, read };
}

/** The approve dialog's widening of a held REST request: its scope (exact request or shape) and uses. */
function widenFields() {
  const exactId = uid('scope-request');
  const shapeId = uid('scope-shape');
  const usesId = uid('uses');
  const usesHintId = uid('uses-hint');
  const exact = h('input', { type: 'radio', name: 'scope', id: exactId, value: 'request', checked: true });
  const shape = h('input', { type: 'radio', name: 'scope', id: shapeId, value: 'shape' });
  const uses = h('input', { id: usesId, name: 'uses', type: 'text', inputmode: 'numeric', autocomplete: 'off', placeholder: 'default', 'aria-describedby': usesHintId });
  const fields = [
    h(
      'fieldset',
      { class: 'field' },
      h('legend', {}, 'Approve'),
      h('div', {}, exact, h('label', { for: exactId }, ' exactly this request (same method, path, query and body)')),
      h('div', {}, shape, h('label', { for: shapeId }, ' any request of this verb, resource, namespace and name, with any body')),
    ),
    h(
      'div',
      { class: 'field' },
      h('label', { for: usesId }, 'Uses (optional)'),
      uses,
      h('p', { class: 'hint', id: usesHintId }, 'How many requests it admits. Empty: once for this exact request; until expiry for any request of the shape.'),
    ),
  ];
  const read = () => {
    const text = uses.value.trim();
    /** @type {{ scope?: 'shape', uses?: number, error?: string }} */
    const out = shape.checked ? { scope: 'shape' } : {};
    if (text === '') return out;
    if (!/^\d+$/.test(text) || Number(text) < 1) return { error: 'Uses: give a whole number, at least 1, or leave it empty.' };
    return { ...out, uses: Number(text) };
  };
  return { fields, uses, read };
}

function dialogOpen() {
  return document.querySelector('dialog[open]') !== null;
}

// ---------------------------------------------------------------------------------------------
// Downloads: fetched with the token, handed to the browser as a blob

function safeFileName(name, fallback) {
  const cleaned = String(name ?? '').replace(/[^A-Za-z0-9._-]/g, '_').replace(/^\.+/, '');
  return cleaned || fallback;
}

function fileNameFrom(disposition) {
  if (!disposition) return undefined;
  const star = /filename\*\s*=\s*UTF-8''([^;]+)/i.exec(disposition);
  if (star) {
    try {
      return decodeURIComponent(star[1] ?? '');
    } catch {
      // fall through
    }
  }
  const plain = /filename\s*=\s*"?([^";]+)"?/i.exec(disposition);
  return plain?.[1];
}

function saveBlob(blob, name) {
  const url = URL.createObjectURL(blob);
  const a = h('a', { href: url, download: name, hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

function downloadButton(label, path, fallbackName) {
  const button = h('button', { type: 'button', class: 'download' }, label);
  button.addEventListener('click', async () => {
    button.disabled = true;
    button.setAttribute('aria-busy', 'true');
    try {
      const res = await api('GET', path, { accept: '*/*' });
      const name = safeFileName(fileNameFrom(res.headers.get('Content-Disposition')), fallbackName);
      saveBlob(await res.blob(), name);
      flash(`Downloaded ${name}.`);
    } catch (err) {
      if (isSignedOut(err)) return signOut(describeError(err));
      flash(describeError(err), 'error');
    } finally {
      button.disabled = false;
      button.removeAttribute('aria-busy');
    }
  });
  return button;
}

// ---------------------------------------------------------------------------------------------
// Views

/** Replaces the main area; moves focus to the heading unless this is a refresh. */
function show(title, nodes, { keepFocus = false } = {}) {
  const focusedId = keepFocus && document.activeElement && main.contains(document.activeElement) ? document.activeElement.id : '';
  main.replaceChildren(...nodes.flat(Infinity).filter(Boolean));
  document.title = `${title} · kube-bastion`;
  const again = focusedId ? document.getElementById(focusedId) : null;
  if (again) again.focus({ preventScroll: true });
  else if (!keepFocus || focusedId) (main.querySelector('h1') ?? main).focus({ preventScroll: keepFocus });
}

function heading(...text) {
  return h('h1', { tabindex: '-1' }, ...text);
}

function crumbs(...items) {
  return h(
    'nav',
    { 'aria-label': 'Breadcrumb', class: 'crumbs' },
    h('ol', {}, items.filter(Boolean).map(([label, link]) => h('li', {}, link ? h('a', { href: link }, label) : h('span', { 'aria-current': 'page' }, label)))),
  );
}

function renderLogin(message) {
  viewSeq += 1;
  runCleanups();
  const inputId = uid('token');
  const hintId = uid('token-hint');
  const error = h('p', { class: 'error', role: 'alert' }, message ?? '');
  // No name: even a submission the script did not stop (CSP form-action 'none' blocks it too) would carry no token.
  const input = h('input', { id: inputId, type: 'password', autocomplete: 'off', spellcheck: 'false', autocapitalize: 'off', required: true, 'aria-describedby': hintId });
  const submit = h('button', { type: 'submit' }, 'Sign in');
  const form = h(
    'form',
    { class: 'login', novalidate: true },
    h('div', { class: 'field' }, h('label', { for: inputId }, 'User token'), input),
    h(
      'p',
      { class: 'hint', id: hintId },
      'Paste the token printed by ',
      h('code', {}, 'kube-bastion user add NAME --role approver|reviewer'),
      ' (it starts with ',
      h('code', {}, 'kbu_'),
      '). It is kept in this browser tab only and sent as an Authorization header.',
    ),
    error,
    h('div', { class: 'buttons' }, submit),
  );
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const token = input.value.trim();
    error.textContent = '';
    if (token === '') {
      error.textContent = 'Paste your user token.';
      input.focus();
      return;
    }
    if (token.startsWith('kba_')) {
      error.textContent = 'That is an agent token (kba_…). Agents cannot use this page; sign in with a user token (kbu_…).';
      input.focus();
      return;
    }
    submit.disabled = true;
    try {
      /** @type {User} */
      const user = await apiJson('GET', '/v1/whoami', { token });
      sessionStorage.setItem(TOKEN_KEY, token);
      me = user;
      showUser();
      clearFlash();
      const target = location.hash && location.hash !== '#' && !location.hash.startsWith('#/login') ? location.hash : defaultHash();
      if (location.hash === target) void route();
      else location.hash = target;
    } catch (err) {
      error.textContent =
        err instanceof ApiError && err.status === 401
          ? `The bastion refused this token (401 ${err.code}): ${err.message}`
          : err instanceof ApiError && err.status === 403
            ? `This token may not use the control API (403 ${err.code}): ${err.message}`
            : describeError(err);
      submit.disabled = false;
      input.focus();
    }
  });
  show('Sign in', [heading('Sign in'), form]);
  input.focus();
}

function defaultHash() {
  return isDecider() ? href.approvals({ state: 'pending' }) : href.approvals();
}

async function renderApprovals(query, opts) {
  const seq = viewSeq;
  const state = oneOf(APPROVAL_STATES, query.get('state')) ? (query.get('state') ?? '') : '';
  const agent = (query.get('agent') ?? '').trim();
  const apiQuery = new URLSearchParams();
  if (state) apiQuery.set('state', state);
  if (agent) apiQuery.set('agent', agent);
  const title = state ? `${state[0].toUpperCase()}${state.slice(1)} approvals` : 'Approvals';

  let content;
  /** @type {Approval[]} */
  let items = [];
  try {
    items = (/** @type {ApprovalList} */ (await apiJson('GET', `/v1/approvals${apiQuery.size ? `?${apiQuery}` : ''}`))).items;
  } catch (err) {
    if (isSignedOut(err)) return signOut(describeError(err));
    content = errorBox(err);
  }
  if (seq !== viewSeq) return;

  const stateId = 'filter-state';
  const agentId = 'filter-agent';
  const select = h('select', { id: stateId, name: 'state' }, h('option', { value: '' }, 'any'), APPROVAL_STATES.map((s) => h('option', { value: s, selected: s === state }, s)));
  const agentInput = h('input', { id: agentId, name: 'agent', type: 'text', value: agent, autocomplete: 'off', placeholder: 'name or id' });
  const filters = h(
    'form',
    { class: 'filters', role: 'search', 'aria-label': 'Filter approvals' },
    h('div', { class: 'field inline' }, h('label', { for: stateId }, 'State'), select),
    h('div', { class: 'field inline' }, h('label', { for: agentId }, 'Agent'), agentInput),
    h('button', { type: 'submit' }, 'Filter'),
    h('span', { class: 'muted updated' }, `Updated ${new Date().toLocaleTimeString()}`),
  );
  const apply = () => {
    location.hash = href.approvals({ state: select.value, agent: agentInput.value.trim() });
  };
  filters.addEventListener('submit', (e) => {
    e.preventDefault();
    apply();
  });
  select.addEventListener('change', apply);

  if (!content) {
    const decider = isDecider();
    content = items.length
      ? h(
          'table',
          { class: 'approvals' },
          h('caption', { class: 'visually-hidden' }, `${items.length} ${title.toLowerCase()}, newest first`),
          h(
            'thead',
            {},
            h('tr', {}, ['ID', 'State', 'Agent', 'Scope', 'Requested by', 'Created', 'Expires', decider ? 'Actions' : null].filter(Boolean).map((c) => h('th', { scope: 'col' }, c))),
          ),
          h(
            'tbody',
            {},
            items.map((a) =>
              h(
                'tr',
                { 'data-id': a.id, 'data-state': a.state },
                h('td', {}, h('a', { href: href.approval(a.id), id: `open-${a.id}` }, a.id)),
                h('td', {}, stateCell(a)),
                h('td', {}, a.agent),
                h(
                  'td',
                  {},
                  h('code', {}, scopeSummary(a.scope)),
                  a.request?.command ? [h('br'), h('span', { class: 'muted' }, '$ ', argv(a.request.command))] : null,
                  a.request?.risk ? [h('br'), h('span', { class: highCount(a.request.risk) > 0 ? 'risk-high' : 'muted' }, `${a.request.risk.subject}: ${highCount(a.request.risk)} high-risk findings`)] : null,
                ),
                h('td', {}, a.requestedBy),
                h('td', {}, timeEl(a.createdAt)),
                h('td', {}, timeEl(a.expiresAt)),
                decider ? h('td', { class: 'actions' }, decisionButtons(a, { withId: true })) : null,
              ),
            ),
          ),
        )
      : h('p', { class: 'empty' }, state ? `No ${state} approvals${agent ? ` for ${agent}` : ''}.` : `No approvals${agent ? ` for ${agent}` : ''}.`);
  }

  show(title, [heading(title), filters, content], opts);
  const snapshot = JSON.stringify(items);
  every(REFRESH_MS, async () => {
    if (dialogOpen() || seq !== viewSeq) return;
    try {
      const fresh = (/** @type {ApprovalList} */ (await apiJson('GET', `/v1/approvals${apiQuery.size ? `?${apiQuery}` : ''}`))).items;
      if (seq === viewSeq && !dialogOpen() && JSON.stringify(fresh) !== snapshot && document.activeElement !== agentInput) void route({ keepFocus: true });
    } catch (err) {
      if (isSignedOut(err)) signOut(describeError(err));
    }
  });
}

/** `demo/web-0 -c app`; a port-forward reaches the pod. @param {Session} s */
function sessionTarget(s) {
  return s.operation === 'portforward' ? `${s.namespace}/${s.pod}` : `${s.namespace}/${s.pod} -c ${s.container}`;
}

/**
 * A port-forward session's connections: port, times, outcome, bytes and sha256 each way, protocol;
 * in the review, whether each was inside the approved ports and why (a refused one is outside).
 * @param {Array<ForwardedConnection | ReviewConnection>} connections
 * @param {string} caption
 */
function connectionsTable(connections, caption) {
  if (connections.length === 0) return h('p', { class: 'empty' }, 'No connections were forwarded.');
  const reviewed = connections.some((c) => 'why' in c);
  const cols = ['#', 'Port', 'Started', 'Ended', 'Outcome', 'Bytes in / out', 'Protocol', 'sha256 in / out', ...(reviewed ? ['In scope', 'Why'] : ['Detail'])];
  return h(
    'table',
    { class: 'connections' },
    h('caption', { class: 'visually-hidden' }, caption),
    h('thead', {}, h('tr', {}, cols.map((c) => h('th', { scope: 'col' }, c)))),
    h(
      'tbody',
      {},
      connections.map((c) => {
        const outside = 'inScope' in c ? !c.inScope : c.outcome === 'refused';
        return h(
          'tr',
          { class: outside ? 'outside' : '' },
          h('td', {}, String(c.seq)),
          h('td', {}, String(c.port)),
          h('td', {}, timeEl(c.startedAt)),
          h('td', {}, c.endedAt ? timeEl(c.endedAt) : badge('open')),
          h('td', {}, c.outcome ?? 'open'),
          h('td', {}, `${c.bytesIn} / ${c.bytesOut}`),
          h('td', {}, c.protocol ?? '—'),
          h('td', {}, c.sha256In || c.sha256Out ? [h('code', { class: 'hash' }, c.sha256In ?? '—'), h('br'), h('code', { class: 'hash' }, c.sha256Out ?? '—')] : '—'),
          ...('why' in c ? [h('td', {}, c.inScope ? 'yes' : 'no'), h('td', {}, c.why)] : [h('td', {}, c.outcome === 'refused' ? `refused, outside the approved ports: ${c.detail ?? '—'}` : (c.detail ?? '—'))]),
        );
      }),
    ),
  );
}

/** @param {Session[]} sessions */
function sessionsTable(sessions) {
  if (!sessions.length) return h('p', { class: 'empty' }, 'No sessions under this approval.');
  return h(
    'table',
    { class: 'sessions' },
    h('caption', { class: 'visually-hidden' }, `${sessions.length} sessions, newest first`),
    h('thead', {}, h('tr', {}, ['Session', 'Operation', 'Command', 'Target', 'Started', 'Ended', 'End reason', 'Exit code'].map((c) => h('th', { scope: 'col' }, c)))),
    h(
      'tbody',
      {},
      sessions.map((s) =>
        h(
          'tr',
          { 'data-id': s.id },
          h('td', {}, h('a', { href: href.session(s.id) }, s.id)),
          h('td', {}, s.operation ?? '—', s.tty ? ' (tty)' : ''),
          h('td', {}, s.command?.length ? h('code', {}, argv(s.command)) : h('span', { class: 'muted' }, '—')),
          h('td', {}, sessionTarget(s)),
          h('td', {}, timeEl(s.startedAt)),
          h('td', {}, s.state === 'open' ? badge('open') : timeEl(s.endedAt)),
          h('td', {}, s.endReason ?? '—'),
          h('td', {}, s.exitCode === null || s.exitCode === undefined ? '—' : String(s.exitCode)),
        ),
      ),
    ),
  );
}

/**
 * The review record: the five questions answered, then the decisions and every attempt against the
 * approval's pod or object, each with why it was inside or outside the scope.
 * @param {ReviewRecord} r
 */
function reviewSection(r) {
  const a = r.answers;
  const verdict = { 'inside-scope': 'ok', 'outside-scope': 'bad', incomplete: 'bad', unused: 'muted' }[r.conformance.verdict] ?? 'muted';
  return [
    rows([
      ['1. Who acted', a.who],
      ['2. Approval needed', [a.approvalNeeded, r.policy.ruleText ? h('pre', { class: 'rule' }, r.policy.ruleText) : '']],
      ['3. Who decided', a.approvedBy],
      ['4. Scope kept', [h('span', { class: `verdict ${verdict}` }, r.conformance.verdict), ' ', a.scopeKept]],
      ['5. What happened', a.happened],
    ]),
    h('h3', {}, 'Decisions'),
    h(
      'table',
      { class: 'review-decisions' },
      h('thead', {}, h('tr', {}, ['When', 'Event', 'By', 'Reason'].map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', {}, r.decisions.map((d) => h('tr', {}, h('td', {}, timeEl(d.at)), h('td', {}, d.event), h('td', {}, d.actor ?? '—'), h('td', {}, d.reason ?? '—')))),
    ),
    ...r.sessions
      .filter((s) => s.connections !== null)
      .flatMap((s) => [
        h('h3', {}, 'Connections forwarded by session ', h('a', { href: href.session(s.id) }, s.id)),
        connectionsTable(s.connections ?? [], `Connections of session ${s.id}`),
      ]),
    h('h3', {}, 'Attempts against the same target'),
    r.conformance.attempts.length === 0
      ? h('p', { class: 'empty' }, 'No requests against this target in the approval\'s window.')
      : h(
          'table',
          { class: 'attempts' },
          h('thead', {}, h('tr', {}, ['When', 'From', 'Request', 'Status', 'In scope', 'Why'].map((c) => h('th', { scope: 'col' }, c)))),
          h(
            'tbody',
            {},
            r.conformance.attempts.map((t) =>
              h(
                'tr',
                { class: t.inScope ? '' : 'outside' },
                h('td', {}, timeEl(t.at)),
                h('td', {}, t.source ?? '—'),
                h('td', {}, h('code', {}, t.command ? `${t.stream ?? ''} ${argv(t.command)}` : `${t.method ?? ''} ${t.path ?? ''}`)),
                h('td', {}, t.statusCode === null ? '—' : String(t.statusCode)),
                h('td', {}, t.inScope ? 'yes' : 'no'),
                h('td', {}, t.why),
              ),
            ),
          ),
        ),
  ];
}

/** The review section, or what kept it from loading (the rest of the page still shows). @param {string} approvalId */
async function loadReview(approvalId) {
  try {
    /** @type {ReviewRecord} */
    const r = await apiJson('GET', `/v1/approvals/${encodeURIComponent(approvalId)}/record`);
    return reviewSection(r);
  } catch (err) {
    if (isSignedOut(err)) throw err;
    return errorBox(err);
  }
}

/** @param {string} approvalId */
async function loadSessions(approvalId) {
  try {
    /** @type {SessionList} */
    const { items } = await apiJson('GET', `/v1/sessions?approval=${encodeURIComponent(approvalId)}`);
    return sessionsTable(items);
  } catch (err) {
    if (isSignedOut(err)) throw err;
    return errorBox(err);
  }
}

/** @param {string} id */
async function renderApproval(id, opts) {
  const seq = viewSeq;
  /** @type {Approval} */
  let a;
  let sessions;
  /** @type {Node[] | HTMLElement} */
  let review;
  try {
    [a, sessions, review] = await Promise.all([
      /** @type {Promise<Approval>} */ (apiJson('GET', `/v1/approvals/${encodeURIComponent(id)}`)),
      loadSessions(id),
      loadReview(id),
    ]);
  } catch (err) {
    if (isSignedOut(err)) return signOut(describeError(err));
    if (seq !== viewSeq) return;
    return show('Approval', [crumbs(['Approvals', href.approvals()], [id]), heading('Approval ', h('code', {}, id)), errorBox(err)], opts);
  }
  if (seq !== viewSeq) return;
  const actions = h(
    'div',
    { class: 'toolbar' },
    decisionButtons(a),
    downloadButton('Download evidence archive (.tar)', `/v1/approvals/${encodeURIComponent(a.id)}/evidence`, `${safeFileName(a.id, 'approval')}-evidence.tar`),
  );
  show(`Approval ${a.id}`, [
    crumbs(['Approvals', href.approvals()], [a.id]),
    heading('Approval ', h('code', {}, a.id), ' ', badge(a.state)),
    actions,
    h('section', { 'aria-labelledby': 'review-h' }, h('h2', { id: 'review-h' }, 'Review'), review),
    h('section', { 'aria-labelledby': 'record-h' }, h('h2', { id: 'record-h' }, 'Record'), approvalRecord(a)),
    h('section', { 'aria-labelledby': 'sessions-h' }, h('h2', { id: 'sessions-h' }, 'Sessions'), sessions),
  ], opts);
  if (a.state === 'pending' || a.state === 'approved') {
    const snapshot = JSON.stringify(a);
    every(REFRESH_MS, async () => {
      if (dialogOpen() || seq !== viewSeq) return;
      try {
        /** @type {Approval} */
        const fresh = await apiJson('GET', `/v1/approvals/${encodeURIComponent(id)}`);
        if (seq === viewSeq && !dialogOpen() && JSON.stringify(fresh) !== snapshot) void route({ keepFocus: true });
      } catch (err) {
        if (isSignedOut(err)) signOut(describeError(err));
      }
    });
  }
}

/** @param {Session} s */
function hashRows(s) {
  const channels = s.channelSha256 && typeof s.channelSha256 === 'object' ? Object.entries(s.channelSha256) : [];
  return rows([
    ['Recording (asciicast)', s.castSha256 ? h('code', { class: 'hash' }, s.castSha256) : null],
    ['Raw stream', s.rawSha256 ? h('code', { class: 'hash' }, s.rawSha256) : null],
    ...channels.map(([name, hash]) => [`Channel ${name}`, h('code', { class: 'hash' }, String(hash))]),
  ]);
}

/** @param {Session} s */
function sessionFacts(s) {
  return rows([
    ['State', badge(s.state)],
    ['Agent', [s.agent, ' ', h('span', { class: 'muted' }, `(${s.agentId})`)]],
    ['Target', sessionTarget(s)],
    ['Operation', [s.operation ?? '—', s.tty ? ' with a TTY' : '']],
    ['Command', s.command?.length ? h('code', {}, argv(s.command)) : null],
    ['Transport', `${s.transport} ${s.protocol}${s.upstreamProtocol ? ` → upstream ${s.upstreamProtocol}` : ''}`],
    ['Started', timeEl(s.startedAt)],
    ['Ended', timeEl(s.endedAt)],
    ['End reason', s.endReason],
    ['Exit code', s.exitCode === null || s.exitCode === undefined ? null : String(s.exitCode)],
    s.status?.message && ['Status', s.status.message],
    ['Bytes in / out', s.bytesIn === null || s.bytesIn === undefined ? null : `${s.bytesIn} / ${s.bytesOut}`],
  ]);
}

/** Files a kubectl cp session carried in its tar stream. @param {Session['files']} files */
function filesTable(files) {
  if (!Array.isArray(files) || files.length === 0) return null;
  return [
    h('h3', {}, `Files carried (kubectl cp): ${files.length}`),
    h(
      'table',
      { class: 'files' },
      h('thead', {}, h('tr', {}, ['Name', 'Size (bytes)', 'sha256'].map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', {}, files.map((f) => h('tr', {}, h('td', {}, h('code', {}, String(f.name))), h('td', {}, String(f.size)), h('td', {}, h('code', { class: 'hash' }, String(f.sha256)))))),
    ),
  ];
}

/** Time of the last event of an asciicast v2 text (event times are absolute there). */
function castDuration(text) {
  const lines = text.trimEnd().split('\n');
  for (let i = lines.length - 1; i > 0; i--) {
    try {
      const ev = JSON.parse(lines[i]);
      if (Array.isArray(ev) && typeof ev[0] === 'number') return ev[0];
    } catch {
      // skip
    }
  }
  return 0;
}

async function sha256Hex(text) {
  if (!globalThis.crypto?.subtle) return undefined; // not a secure context (plain http to a non-local host)
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

/**
 * @param {Session} s
 * @param {HTMLElement} box
 * @param {number} seq
 */
async function mountPlayer(s, box, seq) {
  let text;
  try {
    const res = await api('GET', `/v1/sessions/${encodeURIComponent(s.id)}/recording?format=v2`, { accept: 'application/x-asciicast, text/plain, */*' });
    text = await res.text();
  } catch (err) {
    if (isSignedOut(err)) return signOut(describeError(err));
    if (seq === viewSeq) box.replaceChildren(errorBox(err));
    return;
  }
  if (seq !== viewSeq) return;
  const Player = globalThis.AsciinemaPlayer;
  if (!Player || typeof Player.create !== 'function') {
    box.replaceChildren(h('p', { class: 'error', role: 'alert' }, 'The player script did not load (/ui/vendor/asciinema-player.min.js).'));
    return;
  }
  const el = h('div', { class: 'player' });
  box.replaceChildren(el);
  const end = castDuration(text);
  // The poster shows the recording's last screen until the reviewer presses play.
  const player = Player.create({ data: text }, el, { fit: 'width', idleTimeLimit: 3, poster: `npt:${end}`, controls: true });
  cleanups.push(() => player.dispose());

  const digest = await sha256Hex(text);
  if (seq !== viewSeq || digest === undefined) return;
  const note = h('p', { class: 'muted integrity' });
  if (s.castSha256 && digest === s.castSha256) note.append('✓ The replayed recording matches the recorded sha256 ', h('code', { class: 'hash' }, digest), '.');
  else {
    note.append(
      'sha256 of the text replayed here: ',
      h('code', { class: 'hash' }, digest),
      '. It differs from the recorded file’s when the bastion converts the recording to asciicast v2 for the player; download the recording or the evidence archive to check the original.',
    );
  }
  box.append(note);
}

/** @param {string} id */
async function renderSession(id, opts) {
  const seq = viewSeq;
  /** @type {SessionDetail} */
  let s;
  /** @type {Approval | null} */
  let a = null;
  let approvalError = null;
  try {
    s = await apiJson('GET', `/v1/sessions/${encodeURIComponent(id)}`);
  } catch (err) {
    if (isSignedOut(err)) return signOut(describeError(err));
    if (seq !== viewSeq) return;
    return show('Session', [crumbs(['Approvals', href.approvals()], [id]), heading('Session ', h('code', {}, id)), errorBox(err)], opts);
  }
  if (s.approvalId) {
    try {
      a = await apiJson('GET', `/v1/approvals/${encodeURIComponent(s.approvalId)}`);
    } catch (err) {
      if (isSignedOut(err)) return signOut(describeError(err));
      approvalError = err;
    }
  }
  if (seq !== viewSeq) return;

  const approvalPane = h(
    'aside',
    { class: 'approval-pane', 'aria-labelledby': 'approval-h' },
    h('h2', { id: 'approval-h' }, s.approvalId ? ['Approval ', h('a', { href: href.approval(s.approvalId) }, s.approvalId)] : 'Approval'),
    s.approvalId ? (a ? approvalRecord(a) : errorBox(approvalError)) : h('p', {}, 'None: a policy rule allowed this session without an approval.'),
  );
  // A port-forward has no terminal to replay: its record is its connections (their bytes are in the evidence archive).
  const forward = s.operation === 'portforward';
  const playerBox = forward
    ? null
    : h('div', { class: 'player-box', role: 'region', 'aria-label': 'Recording player' }, h('p', { class: 'muted' }, 'Loading the recording…'));
  const sid = encodeURIComponent(s.id);
  const replayPane = h(
    'section',
    { class: 'replay-pane', 'aria-labelledby': 'replay-h' },
    h('h2', { id: 'replay-h' }, forward ? 'Forwarded connections' : 'Replay'),
    s.state === 'open' ? h('p', { class: 'warn' }, forward ? 'This session is still open: the connections so far.' : 'This session is still open: the recording so far.') : null,
    playerBox,
    forward ? connectionsTable(s.connections ?? [], `Connections of session ${s.id}`) : null,
    forward ? h('p', { class: 'muted' }, 'The bytes of each connection, both ways, are in its raw sidecar: download the evidence archive.') : null,
    h(
      'div',
      { class: 'toolbar' },
      // As recorded (no format): the bytes the recorded sha256 is of.
      forward ? null : downloadButton('Download recording (.cast)', `/v1/sessions/${sid}/recording`, `${safeFileName(s.id, 'session')}.cast`),
      forward ? null : downloadButton('Download raw stream', `/v1/sessions/${sid}/raw`, `${safeFileName(s.id, 'session')}.raw`),
      s.approvalId ? downloadButton('Download evidence archive (.tar)', `/v1/approvals/${encodeURIComponent(s.approvalId)}/evidence`, `${safeFileName(s.approvalId, 'approval')}-evidence.tar`) : null,
    ),
    h('h3', {}, 'Session'),
    sessionFacts(s),
    h('h3', {}, 'Hashes (sha256)'),
    hashRows(s),
    filesTable(s.files),
  );
  show(`Session ${s.id}`, [
    crumbs(['Approvals', href.approvals()], s.approvalId ? [s.approvalId, href.approval(s.approvalId)] : null, [s.id]),
    heading('Session ', h('code', {}, s.id), ' ', badge(s.state)),
    h('div', { class: 'session-layout' }, approvalPane, replayPane),
  ], opts);
  if (playerBox) await mountPlayer(s, playerBox, seq);
}

function renderNotFound() {
  show('Not found', [heading('Not found'), h('p', {}, 'No such page. ', h('a', { href: defaultHash() }, 'Go to the approvals.'))]);
}

// ---------------------------------------------------------------------------------------------
// Routing

function every(ms, fn) {
  const timer = setInterval(fn, ms);
  cleanups.push(() => clearInterval(timer));
}

function runCleanups() {
  const old = cleanups;
  cleanups = [];
  for (const c of old) {
    try {
      c();
    } catch {
      // a disposed player may throw; nothing to do
    }
  }
}

function showUser() {
  const who = /** @type {HTMLElement} */ (document.getElementById('who'));
  const nav = /** @type {HTMLElement} */ (document.getElementById('nav'));
  const name = /** @type {HTMLElement} */ (document.getElementById('who-name'));
  who.hidden = me === null;
  nav.hidden = me === null;
  name.textContent = me ? `${me.name} (${me.role})` : '';
}

function parseHash() {
  const raw = location.hash.replace(/^#/, '');
  const q = raw.indexOf('?');
  const path = q === -1 ? raw : raw.slice(0, q);
  const query = new URLSearchParams(q === -1 ? '' : raw.slice(q + 1));
  let parts;
  try {
    parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  } catch {
    parts = ['?'];
  }
  return { parts, query };
}

async function route(opts = {}) {
  const keepFocus = opts.keepFocus === true;
  viewSeq += 1;
  runCleanups();
  if (!keepFocus) clearFlash();
  if (!getToken()) return renderLogin();
  if (me === null) {
    try {
      me = await apiJson('GET', '/v1/whoami');
    } catch (err) {
      if (isSignedOut(err)) return signOut(describeError(err));
      return show('Error', [heading('Cannot reach the bastion'), errorBox(err)]);
    }
    showUser();
  }
  const { parts, query } = parseHash();
  if (parts.length === 0) {
    history.replaceState(null, '', defaultHash());
    return route(opts);
  }
  const view = { keepFocus };
  const [area, id = ''] = parts;
  if (area === 'approvals' && parts.length === 1) return renderApprovals(query, view);
  if (area === 'approvals' && parts.length === 2) return renderApproval(id, view);
  if (area === 'sessions' && parts.length === 2) return renderSession(id, view);
  return renderNotFound();
}

document.getElementById('logout')?.addEventListener('click', () => {
  signOut();
  flash('Signed out.');
});
// The skip link must not change the hash (the hash is the route).
document.getElementById('skip-link')?.addEventListener('click', (e) => {
  e.preventDefault();
  main.focus();
});
window.addEventListener('hashchange', () => void route());
void route();
