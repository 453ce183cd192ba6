// A refused upgrade (any answer but 101): read the body (bounded), keep upstream's metav1.Status as
// data, and classify the refusal.
import type { IncomingMessage } from 'node:http';
import { apiStatus, decodeStatus, type Status } from '../../protocol/status.js';
import { BastionError, ErrorCode } from '../../errors/index.js';
import { MAX_REFUSAL_BODY_BYTES } from './types.js';

/** Reads at most `limit` bytes of a response body; never rejects (a broken body is just shorter). */
export function readBoundedBody(res: IncomingMessage, limit = MAX_REFUSAL_BODY_BYTES): Promise<Buffer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      resolve(Buffer.concat(chunks));
    };
    res.on('data', (chunk: Buffer) => {
      if (done) return;
      const room = limit - size;
      if (chunk.length >= room) {
        chunks.push(chunk.subarray(0, room));
        size = limit;
        finish();
        res.destroy();
        return;
      }
      chunks.push(chunk);
      size += chunk.length;
    });
    res.on('end', finish);
    res.on('close', finish);
    res.on('error', finish);
  });
}

const CODE_FOR_HTTP: Readonly<Record<number, ErrorCode>> = {
  400: ErrorCode.BAD_REQUEST,
  401: ErrorCode.UNAUTHORIZED,
  403: ErrorCode.FORBIDDEN,
  404: ErrorCode.NOT_FOUND,
  405: ErrorCode.METHOD_NOT_ALLOWED,
  409: ErrorCode.ALREADY_EXISTS,
};

const REASON_FOR_HTTP: Readonly<Record<number, string>> = {
  400: 'BadRequest',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'NotFound',
  405: 'MethodNotAllowed',
  409: 'AlreadyExists',
  429: 'TooManyRequests',
  500: 'InternalError',
  503: 'ServiceUnavailable',
  504: 'Timeout',
};

export interface Refusal {
  error: BastionError;
  /** True when the refusal looks like a subprotocol rejection (worth a retry with v4 only). */
  protocolRejected: boolean;
}

/**
 * Classifies a non-101 answer. The body, when it is a metav1.Status (every kube-apiserver error
 * is), travels as `details.status` so the relay can hand upstream's own answer (404 pod not found,
 * 403 RBAC denial) back to the agent. Otherwise a Status is synthesised from the HTTP code and
 * body text. Codes: 400 BAD_REQUEST, 401 UNAUTHORIZED, 403 FORBIDDEN, 404 NOT_FOUND,
 * 405 METHOD_NOT_ALLOWED, 409 ALREADY_EXISTS, anything else UPSTREAM_UNAVAILABLE.
 *
 * A subprotocol rejection is a 400 or 403 whose body is not a Status: that is how a kubelet's
 * WebSocket handshake (golang.org/x/net/websocket via apimachinery wsstream, reached through an
 * API server without the v5 translator) refuses an offer it cannot serve: 403, empty body.
 */
export function classifyRefusal(httpStatus: number, statusText: string | undefined, body: Buffer, offered: readonly string[]): Refusal {
  let upstreamStatus: Status | undefined;
  if (body.length > 0) {
    try {
      upstreamStatus = decodeStatus(body);
    } catch {
      upstreamStatus = undefined;
    }
  }
  const text = body.toString('utf8').trim().slice(0, 1024);
  const status =
    upstreamStatus ??
    apiStatus(
      httpStatus,
      REASON_FOR_HTTP[httpStatus] ?? (httpStatus >= 500 ? 'InternalError' : 'BadRequest'),
      `upstream refused the exec/attach upgrade: HTTP ${httpStatus}${statusText ? ` ${statusText}` : ''}${text ? `: ${text}` : ''}`,
    );
  const code = CODE_FOR_HTTP[httpStatus] ?? ErrorCode.UPSTREAM_UNAVAILABLE;
  const message = status.message ?? `upstream refused the exec/attach upgrade: HTTP ${httpStatus}`;
  return {
    error: new BastionError(code, message, { status, httpStatus, offered: [...offered] }),
    protocolRejected: upstreamStatus === undefined && (httpStatus === 400 || httpStatus === 403),
  };
}
