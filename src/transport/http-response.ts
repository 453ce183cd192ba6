import type { Duplex } from 'node:stream';
import type { ServerResponse } from 'node:http';
import { encodeStatus, type Status } from '../protocol/status.js';

/**
 * Answers a not-yet-upgraded connection with a metav1.Status, then closes it. Used when an
 * upgrade is refused: kubectl decodes the body and prints the Status (and 1.30+ retries over SPDY).
 */
export function writeStatusToSocket(
  socket: Duplex,
  status: Status,
  extraHeaders: ReadonlyArray<readonly [string, string]> = [],
): void {
  const body = encodeStatus(status);
  const code = status.code ?? 500;
  const lines = [
    `HTTP/1.1 ${code} ${reasonPhrase(code)}`,
    'Content-Type: application/json',
    `Content-Length: ${body.length}`,
    'Connection: close',
    ...extraHeaders.map(([k, v]) => `${k}: ${v}`),
    '',
    '',
  ];
  if (socket.destroyed || socket.writableEnded) return;
  socket.end(Buffer.concat([Buffer.from(lines.join('\r\n'), 'latin1'), body]));
}

/** Answers an ordinary HTTP request with a metav1.Status. */
export function writeStatusResponse(res: ServerResponse, status: Status): void {
  const body = encodeStatus(status);
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.writeHead(status.code ?? 500, { 'Content-Type': 'application/json', 'Content-Length': body.length });
  res.end(body);
}

function reasonPhrase(code: number): string {
  const phrases: Record<number, string> = {
    400: 'Bad Request',
    401: 'Unauthorized',
    403: 'Forbidden',
    404: 'Not Found',
    405: 'Method Not Allowed',
    409: 'Conflict',
    500: 'Internal Server Error',
    502: 'Bad Gateway',
    503: 'Service Unavailable',
  };
  return phrases[code] ?? 'Error';
}
