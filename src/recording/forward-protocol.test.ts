import { describe, expect, it } from 'vitest';
import { recogniseForward } from './forward-protocol.js';

const b = (s: string | number[]) => (typeof s === 'string' ? Buffer.from(s, 'latin1') : Buffer.from(s));

function pgStartup(code: number): Buffer {
  const m = Buffer.alloc(8);
  m.writeUInt32BE(8, 0);
  m.writeUInt32BE(code, 4);
  return m;
}

describe('recogniseForward', () => {
  it('names an HTTP/1.x request line once the line is complete', () => {
    expect(recogniseForward(b('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n'), false)).toBe('http/1.x');
    expect(recogniseForward(b('POST /a?b=c HTTP/1.0\n'), false)).toBe('http/1.x');
    // Not yet a whole line: wait for more.
    expect(recogniseForward(b('GET /hea'), false)).toBeUndefined();
    // A line that is not a request line, and HTTP/2's preface (not HTTP/1.x).
    expect(recogniseForward(b('HELLO THERE\r\n'), false)).toBe('unrecognised');
    expect(recogniseForward(b('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), false)).toBe('unrecognised');
  });

  it('names Redis from a RESP array of bulk strings, or an inline PING', () => {
    expect(recogniseForward(b('*2\r\n$3\r\nGET\r\n$1\r\nk\r\n'), false)).toBe('redis');
    expect(recogniseForward(b('PING\r\n'), false)).toBe('redis');
  });

  it('names PostgreSQL from a startup, SSL, GSS or cancel request', () => {
    for (const code of [196608, 80877103, 80877104, 80877102]) expect(recogniseForward(pgStartup(code), false)).toBe('postgresql');
    const odd = pgStartup(12345);
    expect(recogniseForward(odd, true)).toBe('unrecognised');
  });

  it('names a TLS ClientHello (encrypted: nothing more is read)', () => {
    expect(recogniseForward(b([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc]), false)).toBe('tls');
  });

  it('says unrecognised for binary bytes, and decides at the end for a short printable prefix', () => {
    expect(recogniseForward(b([0x00, 0x01, 0x02, 0x03, 0xff, 0xfe, 0x10, 0x20, 0x30]), false)).toBe('unrecognised');
    expect(recogniseForward(b('abc'), false)).toBeUndefined();
    expect(recogniseForward(b('abc'), true)).toBe('unrecognised');
    expect(recogniseForward(Buffer.alloc(0), true)).toBeUndefined();
  });
});
