// A refused upgrade (any answer but 101): read the body (bounded), keep upstream's metav1.Status as
// data, and classify the refusal.
import type { IncomingMessage } from 'node:http';
import { apiStatus, decodeStatus, type Status } from '../../protocol/status.js';
import { statusReasonOf, codeForHttpStatus, UpstreamRefusal } from '../../errors/index.js';
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

export interface Refusal {
  error: UpstreamRefusal;
  /** True when the refusal looks like a subprotocol rejection (worth a retry with v4 only). */
  protocolRejected: boolean;
}

/**
 * Classifies a non-101 answer. The body, when it is a metav1.Status (every kube-apiserver error
 * is), travels as the UpstreamRefusal's `status`, so the session hands upstream's own answer (404
 * pod not found, 403 RBAC denial) back to the agent. Otherwise a Status is synthesised from the HTTP code and
 * body text. The error's code follows the HTTP status (errors/codes.ts `codeForHttpStatus`).
 *
 * A subprotocol rejection is a 400 or 403 whose body is not a Status: that is how a kubelet's
 * WebSocket handshake (golang.org/x/net/websocket via apimachinery wsstream, reached through an
 * API server without the v5 translator) refuses an offer it cannot serve: 403, empty body.
 */
export function classifyRefusal(httpStatus: number, statusText: string | undefined, body: Buffer, offered: readonly string[], what = 'exec/attach'): Refusal {
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
      statusReasonOf(codeForHttpStatus(httpStatus)),
      `upstream refused the ${what} upgrade: HTTP ${httpStatus}${statusText ? ` ${statusText}` : ''}${text ? `: ${text}` : ''}`,
    );
  return {
    error: new UpstreamRefusal(status, httpStatus, { offered: [...offered] }),
    protocolRejected: upstreamStatus === undefined && (httpStatus === 400 || httpStatus === 403),
  };
}
