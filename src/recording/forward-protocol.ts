// What a forwarded connection plainly is, from the first bytes the client sends (HTTP/1.x,
// Redis, PostgreSQL and TLS clients all speak first). Only unmistakable openings count; anything
// else is reported as `unrecognised`, never guessed.
import type { ForwardProtocol } from '../model/vocabulary.js';

/** Bytes looked at before deciding; an HTTP request line longer than this is not recognised. */
export const RECOGNITION_WINDOW = 8 * 1024;

const HTTP_METHODS = 'GET|HEAD|POST|PUT|DELETE|CONNECT|OPTIONS|TRACE|PATCH';
const HTTP_REQUEST_LINE = new RegExp(`^(?:${HTTP_METHODS}) [!-~]+ HTTP/1\\.[01]\\r?\\n`);
/** A RESP array of bulk strings (`*2\r\n$3\r\nGET\r\n`), which every Redis client sends. */
const RESP_ARRAY = /^\*[1-9]\d{0,5}\r\n\$\d{1,9}\r\n/;
/** PostgreSQL's first message codes: protocol 3.0 startup, SSLRequest, GSSENCRequest, CancelRequest. */
const POSTGRES_CODES = new Set([196608, 80877103, 80877104, 80877102]);

/**
 * Decides from the client's first bytes: a protocol, `unrecognised`, or undefined when more bytes
 * are needed (`ended`: no more will come, so decide now).
 */
export function recogniseForward(first: Buffer, ended: boolean): ForwardProtocol | undefined {
  if (first.length === 0) return undefined;
  if (isTlsClientHello(first)) return 'tls';
  if (first.length >= 8) {
    const length = first.readUInt32BE(0);
    if (length >= 8 && length <= 10_000 && POSTGRES_CODES.has(first.readUInt32BE(4))) return 'postgresql';
  }
  if (RESP_ARRAY.test(first.toString('latin1', 0, Math.min(first.length, 32)))) return 'redis';
  const newline = first.indexOf(0x0a);
  if (newline >= 0) {
    if (HTTP_REQUEST_LINE.test(first.toString('latin1', 0, newline + 1))) return 'http/1.x';
    if (/^(?:PING|QUIT)\r?\n$/i.test(first.toString('latin1', 0, newline + 1))) return 'redis';
    return 'unrecognised';
  }
  if (ended || first.length >= RECOGNITION_WINDOW) return 'unrecognised';
  // Still possibly an HTTP request line or an inline Redis command: wait for its end.
  return couldStillBe(first) ? undefined : 'unrecognised';
}

function isTlsClientHello(b: Buffer): boolean {
  return b.length >= 6 && b[0] === 0x16 && b[1] === 0x03 && b[2]! <= 0x04 && b[5] === 0x01;
}

/** True while the bytes are a prefix of something recognisable: a printable line, or a short binary prefix. */
function couldStillBe(b: Buffer): boolean {
  if (b.length < 8) return true;
  for (const byte of b) if (byte !== 0x0d && (byte < 0x20 || byte > 0x7e)) return false;
  return true;
}
