// Opens the upstream exec/attach WebSocket: builds ws client options from the UpstreamTarget's
// TLS settings and credential headers, offers the subprotocols, turns refusals into BastionErrors
// carrying upstream's Status, and falls back to SPDY/3.1 (spdy-dial.ts) when an old server rejects v5.
import https from 'node:https';
import type { IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import { WebSocket, type ClientOptions } from 'ws';
import { ProtocolName } from '../../protocol/constants.js';
import { effectiveStreamOptions, parseRemoteCommandQuery } from '../../protocol/options.js';
import { BastionError, ErrorCode, UpstreamRefusal } from '../../errors/index.js';
import { SUBPROTOCOLS } from '../../transport/websocket/subprotocols.js';
import { upstreamPath } from '../rest-proxy.js';
import { upstreamRequestOptions, type UpstreamTarget } from '../upstream.js';
import { classifyRefusal, readBoundedBody } from './refusal.js';
import { WebSocketUpstreamSession } from './session.js';
import { dialUpstreamSpdyExec } from './spdy-dial.js';
import { sharedSecureContext } from './tls-context.js';
import {
  DEFAULT_CLOSE_TIMEOUT_MS,
  DEFAULT_HANDSHAKE_TIMEOUT_MS,
  DEFAULT_KEEPALIVE_MS,
  DEFAULT_UPSTREAM_PROTOCOLS,
  UPSTREAM_MAX_PAYLOAD,
  type UpstreamExecRequest,
  type UpstreamSession,
} from './types.js';

/**
 * Dials upstream and resolves once the session is open: a WebSocket 101 with one of the offered
 * subprotocols, or (fallback) a SPDY/3.1 session with its streams. Rejects only with a BastionError:
 * - a non-101 answer: an UpstreamRefusal carrying upstream's metav1.Status (or one synthesised
 *   from the answer) and its HTTP status, with `details.offered`;
 * - 101 without one of the offered subprotocols (after the fallback): NO_COMMON_PROTOCOL;
 * - network, TLS, timeout and credential-plugin failures: UPSTREAM_UNAVAILABLE;
 * - an abort through `signal`: CONNECTION_CLOSED with `details.aborted = true`;
 * - a bad request (path not starting with '/', unknown subprotocol name): BAD_REQUEST / CONFIG_INVALID.
 *
 * SPDY fallback: when the offer contains v5 and upstream rejects the subprotocol — 101 without a
 * subprotocol (or with one we did not offer), or a 400/403 whose body is not a metav1.Status
 * (a kubelet's handshake refusal when an API server older than 1.30, or with the
 * TranslateStreamCloseWebsocketRequests gate off, proxies the request raw) — the session is
 * dialed once more over SPDY/3.1 offering v4, v3, v2 and channel.k8s.io, as kubectl 1.27 does.
 * Not WebSocket v4: it has no way to half-close stdin (`cat` would never see EOF), while a FIN on
 * the SPDY stdin stream is the half-close on every version. The session's `protocol` then reads
 * e.g. 'v4.channel.k8s.io over SPDY/3.1'. A refusal carrying a Status (401, 403 RBAC, 404) is
 * never retried.
 */
export async function dialUpstreamExec(upstream: UpstreamTarget, req: UpstreamExecRequest): Promise<UpstreamSession> {
  const offer = validateOffer(req.protocols ?? [...DEFAULT_UPSTREAM_PROTOCOLS]);
  if (typeof req.path !== 'string' || !req.path.startsWith('/')) {
    throw new BastionError(ErrorCode.BAD_REQUEST, `upstream exec path must start with "/": ${String(req.path)}`);
  }
  throwIfAborted(req.signal);
  const url = upstreamUrl(upstream.server, req.path);
  const query = parseRemoteCommandQuery(new URLSearchParams(req.path.split('?')[1] ?? ''));
  const wantsStdin = query.stdin;

  const base = await upstreamRequestOptions(upstream);
  throwIfAborted(req.signal);
  const options = clientOptions(base, req);
  const ctx: AttemptContext = {
    url,
    options,
    wantsStdin,
    keepAliveMs: req.keepAliveMs ?? DEFAULT_KEEPALIVE_MS,
    signal: req.signal,
  };

  const first = await attempt(ctx, offer);
  if (first.ok) return first.session;
  if (!first.protocolRejected || !offer.includes(ProtocolName.v5)) throw first.error;
  return dialUpstreamSpdyExec({
    server: upstream.server,
    base,
    tls: tlsOptions(base),
    path: req.path,
    options: effectiveStreamOptions(query),
    headers: req.headers,
    signal: req.signal,
    handshakeTimeoutMs: req.handshakeTimeoutMs,
    keepAliveMs: ctx.keepAliveMs,
    details: { fallbackFrom: offer, firstRefusal: first.error.message },
  });
}

interface AttemptContext {
  url: string;
  options: ClientOptions;
  wantsStdin: boolean;
  keepAliveMs: number;
  signal: AbortSignal | undefined;
}

type AttemptResult =
  | { ok: true; session: UpstreamSession }
  | { ok: false; error: BastionError; protocolRejected: boolean };

/** One opening handshake. Never rejects. */
function attempt(ctx: AttemptContext, offer: string[], extraDetails: Record<string, unknown> = {}): Promise<AttemptResult> {
  return new Promise((resolve) => {
    let ws: WebSocket;
    try {
      ws = new WebSocket(ctx.url, offer, ctx.options);
    } catch (err) {
      resolve({
        ok: false,
        protocolRejected: false,
        error: new BastionError(ErrorCode.BAD_REQUEST, `invalid upstream WebSocket request: ${(err as Error).message}`, { url: ctx.url, offered: offer }, { cause: err }),
      });
      return;
    }
    // ws reports late errors (e.g. after we gave up on the handshake); they must never go unheard.
    ws.on('error', ignore);
    let settled = false;
    /** The Sec-WebSocket-Protocol of a 101 answer: undefined until one arrives, null if absent. */
    let answered: string | null | undefined;

    const settle = (result: AttemptResult): void => {
      if (settled) return;
      settled = true;
      ws.off('upgrade', onUpgrade);
      ws.off('unexpected-response', onUnexpectedResponse);
      ws.off('open', onOpen);
      ws.off('error', onError);
      ws.off('close', onClose);
      ctx.signal?.removeEventListener('abort', onAbort);
      if (!result.ok) ws.terminate();
      resolve(result);
    };
    const failWith = (code: ErrorCode, message: string, protocolRejected: boolean, cause?: unknown): void => {
      const details = { offered: offer, ...extraDetails };
      settle({ ok: false, protocolRejected, error: new BastionError(code, message, details, cause === undefined ? undefined : { cause }) });
    };

    const onUpgrade = (res: IncomingMessage): void => {
      const value = res.headers['sec-websocket-protocol'];
      answered = typeof value === 'string' ? value : null;
    };
    const onUnexpectedResponse = (_req: unknown, res: IncomingMessage): void => {
      void readBoundedBody(res).then((body) => {
        const refusal = classifyRefusal(res.statusCode ?? 0, res.statusMessage, body, offer);
        const error = Object.keys(extraDetails).length === 0
          ? refusal.error
          : new UpstreamRefusal(refusal.error.status, refusal.error.upstreamHttpStatus, { ...refusal.error.details, ...extraDetails });
        settle({ ok: false, error, protocolRejected: refusal.protocolRejected });
      });
    };
    const onOpen = (): void => {
      const subprotocol = SUBPROTOCOLS.get(ws.protocol);
      if (subprotocol === undefined) {
        // ws only opens with a subprotocol from the offer, and the offer was validated.
        failWith(ErrorCode.NO_COMMON_PROTOCOL, `upstream chose an unusable subprotocol "${ws.protocol}"`, false);
        return;
      }
      // The session takes over the listeners synchronously: messages may follow at once.
      let session: UpstreamSession;
      try {
        session = new WebSocketUpstreamSession(ws, {
          subprotocol,
          stdin: ctx.wantsStdin,
          keepAliveMs: ctx.keepAliveMs,
          closeTimeoutMs: DEFAULT_CLOSE_TIMEOUT_MS,
          signal: ctx.signal,
        });
      } catch (err) {
        failWith(ErrorCode.INTERNAL, `could not set up the upstream session: ${(err as Error).message}`, false, err);
        return;
      }
      settle({ ok: true, session });
    };
    const onError = (err: Error): void => {
      if (answered !== undefined && (answered === null || !offer.includes(answered))) {
        const got = answered === null ? 'no subprotocol' : `subprotocol "${answered}"`;
        failWith(ErrorCode.NO_COMMON_PROTOCOL, `upstream accepted the upgrade with ${got}; offered ${offer.join(', ')}`, true, err);
        return;
      }
      failWith(ErrorCode.UPSTREAM_UNAVAILABLE, `kube-bastion could not reach the upstream API server: ${err.message}`, false, err);
    };
    const onClose = (): void => {
      failWith(ErrorCode.UPSTREAM_UNAVAILABLE, 'upstream closed the connection during the WebSocket handshake', false);
    };
    const onAbort = (): void => {
      settle({
        ok: false,
        protocolRejected: false,
        error: new BastionError(ErrorCode.CONNECTION_CLOSED, 'upstream dial aborted', { aborted: true, offered: offer }, { cause: ctx.signal?.reason }),
      });
    };

    ws.on('upgrade', onUpgrade);
    ws.on('unexpected-response', onUnexpectedResponse);
    ws.on('open', onOpen);
    ws.on('error', onError);
    ws.on('close', onClose);
    if (ctx.signal?.aborted) onAbort();
    else ctx.signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** wss:// URL for `path` on the upstream server, keeping the server URL's own path prefix. */
export function upstreamUrl(server: string, path: string): string {
  const target = new URL(server);
  return `wss://${target.host}${upstreamPath(server, path)}`;
}

/** TLS settings ws passes to tls.connect; everything else in https.RequestOptions is per request. */
const TLS_OPTION_KEYS = [
  'ca',
  'cert',
  'key',
  'pfx',
  'passphrase',
  'servername',
  'rejectUnauthorized',
  'checkServerIdentity',
  'ciphers',
  'ecdhCurve',
  'sigalgs',
  'minVersion',
  'maxVersion',
  'secureProtocol',
  'secureOptions',
  'crl',
] as const;

/**
 * The TLS settings of the target's per-request options (the explicit ones win over its agent's),
 * for a connection of its own: an upgrade takes its socket for good, so it never uses the
 * keep-alive REST agent.
 */
export function tlsOptions(base: https.RequestOptions): Record<string, unknown> {
  const options: Record<string, unknown> = {};
  const agentOptions = base.agent instanceof https.Agent ? (base.agent as https.Agent & { options?: Record<string, unknown> }).options : undefined;
  for (const key of TLS_OPTION_KEYS) {
    const value = (base as Record<string, unknown>)[key] ?? agentOptions?.[key];
    if (value !== undefined) options[key] = value;
  }
  // tls.connect uses this instead of building a context from the PEMs for every connection.
  try {
    options['secureContext'] = sharedSecureContext(options);
  } catch {
    // Unusable material: tls.connect fails on it as it always did, as the connection's error.
  }
  return options;
}

/** Headers ws (or the upgrade itself) owns; a caller's copy would break the handshake. */
const HANDSHAKE_HEADERS = new Set([
  'host',
  'connection',
  'upgrade',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'content-length',
  'te',
  'trailer',
  'sec-websocket-key',
  'sec-websocket-version',
  'sec-websocket-protocol',
  'sec-websocket-extensions',
  'sec-websocket-accept',
]);

/**
 * ws client options from the target's per-request options. The agent is not used: an upgrade
 * takes its socket for good, so a keep-alive REST agent is the wrong place for it; instead its TLS
 * settings (and the explicit ones, which win) go to a dedicated TLS connection.
 */
export function clientOptions(base: https.RequestOptions, req: Pick<UpstreamExecRequest, 'headers' | 'handshakeTimeoutMs'>): ClientOptions {
  const options = tlsOptions(base);
  const headers: Record<string, string | string[]> = {};
  const add = (source: OutgoingHttpHeaders | Record<string, string | string[]> | undefined): void => {
    for (const [name, value] of Object.entries(source ?? {})) {
      const n = name.toLowerCase();
      if (value === undefined || HANDSHAKE_HEADERS.has(n)) continue;
      headers[n] = Array.isArray(value) ? value.map(String) : String(value);
    }
  };
  add(base.headers as OutgoingHttpHeaders | undefined);
  add(req.headers);
  return {
    ...options,
    // Array values become repeated header lines (Impersonate-Group may repeat); ws passes them
    // to http.request unchanged, although its typing says string.
    headers: headers as Record<string, string>,
    ...(base.auth ? { auth: base.auth } : {}),
    perMessageDeflate: false,
    followRedirects: false,
    maxPayload: UPSTREAM_MAX_PAYLOAD,
    handshakeTimeout: req.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS,
  } as ClientOptions;
}

function validateOffer(offer: readonly string[]): string[] {
  if (!Array.isArray(offer) || offer.length === 0) {
    throw new BastionError(ErrorCode.CONFIG_INVALID, 'upstream exec: at least one subprotocol must be offered');
  }
  const unknown = offer.filter((name) => !SUBPROTOCOLS.has(name) || name === '');
  if (unknown.length > 0) {
    throw new BastionError(ErrorCode.CONFIG_INVALID, `upstream exec: no WebSocket framing for subprotocol(s): ${unknown.join(', ')}`, { unknown });
  }
  if (new Set(offer).size !== offer.length) {
    throw new BastionError(ErrorCode.CONFIG_INVALID, `upstream exec: duplicate subprotocol in ${offer.join(', ')}`);
  }
  return [...offer];
}

function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) {
    throw new BastionError(ErrorCode.CONNECTION_CLOSED, 'upstream dial aborted', { aborted: true }, { cause: signal.reason });
  }
}

function ignore(): void {}
