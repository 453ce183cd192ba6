// Reading a REST request's body whole, bounded, before its approval gate: an approval is bound to
// the exact bytes (their SHA-256), and exactly those bytes are forwarded. Only requests that need
// an approval are read this way; allowed requests stream as they arrive.
import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

/** kube-apiserver's own limit on a request body (3 MiB): nothing larger could be applied anyway. */
export const MAX_HELD_BODY_BYTES = 3 * 1024 * 1024;

export type BodyRead =
  | { ok: true; body: Buffer; sha256: string | null }
  | { ok: false; reason: 'too-large'; limit: number }
  | { ok: false; reason: 'gone' };

/**
 * Reads `req` to its end, at most `limit` bytes. A declared Content-Length above the limit is
 * refused before a byte is read. On refusal the rest is left to be discarded (the caller answers
 * first, Node drains what follows), so the client reads the answer instead of a reset.
 */
export function readBoundedBody(req: IncomingMessage, limit = MAX_HELD_BODY_BYTES): Promise<BodyRead> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) return Promise.resolve({ ok: false, reason: 'too-large', limit });
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const settle = (r: BodyRead): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('close', onClose);
      req.off('error', onClose);
      resolve(r);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limit) return settle({ ok: false, reason: 'too-large', limit });
      chunks.push(chunk);
    };
    const onEnd = (): void => {
      const body = Buffer.concat(chunks, size);
      settle({ ok: true, body, sha256: body.length > 0 ? createHash('sha256').update(body).digest('hex') : null });
    };
    const onClose = (): void => {
      if (!req.readableEnded) settle({ ok: false, reason: 'gone' });
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('close', onClose);
    req.on('error', onClose);
  });
}
