import { describe, expect, it } from 'vitest';
import { ErrorCode, isBastionError } from '../../errors/index.js';
import { decodeBase64Strict, encodeMessage, negotiateSubprotocol, type Negotiation } from './subprotocols.js';

const CLIENT_NODE = 'v5.channel.k8s.io,v4.channel.k8s.io,v3.channel.k8s.io,v2.channel.k8s.io,channel.k8s.io';

function chosen(n: Negotiation): string {
  if (!n.ok) throw n.error;
  return n.subprotocol.name;
}

describe('negotiateSubprotocol', () => {
  it('takes the first supported name from repeated header lines', () => {
    expect(chosen(negotiateSubprotocol(['v5.channel.k8s.io', 'v4.channel.k8s.io']))).toBe('v5.channel.k8s.io');
    expect(chosen(negotiateSubprotocol(['v3.channel.k8s.io', 'v4.channel.k8s.io']))).toBe('v4.channel.k8s.io');
  });

  it("reads client-node's comma-joined list and picks v5", () => {
    const n = negotiateSubprotocol([CLIENT_NODE]);
    expect(chosen(n)).toBe('v5.channel.k8s.io');
    expect(n.ok && n.subprotocol.protocol.supportsStreamClose).toBe(true);
  });

  it('follows the client order, not ours', () => {
    expect(chosen(negotiateSubprotocol(['v4.channel.k8s.io, v5.channel.k8s.io']))).toBe('v4.channel.k8s.io');
  });

  it('maps base64 variants to base64 framing with the right version', () => {
    const b4 = negotiateSubprotocol(['v4.base64.channel.k8s.io']);
    expect(b4.ok && [b4.subprotocol.encoding, b4.subprotocol.protocol.version]).toEqual(['base64', 4]);
    const b1 = negotiateSubprotocol('base64.channel.k8s.io');
    expect(b1.ok && [b1.subprotocol.encoding, b1.subprotocol.protocol.version]).toEqual(['base64', 1]);
  });

  it('treats no header as channel.k8s.io with nothing echoed', () => {
    const n = negotiateSubprotocol(undefined);
    expect(n.ok && [n.subprotocol.name, n.subprotocol.protocol.version, n.subprotocol.encoding]).toEqual(['', 1, 'binary']);
  });

  it('refuses a missing header when channel.k8s.io is not allowed (400)', () => {
    const n = negotiateSubprotocol(undefined, ['v5.channel.k8s.io']);
    expect(!n.ok && n.error.code).toBe(ErrorCode.BAD_STREAM_REQUEST);
    expect(!n.ok && n.error.httpStatus).toBe(400);
  });

  it('refuses when nothing offered is supported (403), including v2/v3 which have no WebSocket form', () => {
    const n = negotiateSubprotocol(['v3.channel.k8s.io,v2.channel.k8s.io']);
    expect(!n.ok && isBastionError(n.error, ErrorCode.NO_COMMON_PROTOCOL)).toBe(true);
    expect(!n.ok && n.error.httpStatus).toBe(403);
    expect(!n.ok && n.error.details).toMatchObject({ offered: ['v3.channel.k8s.io', 'v2.channel.k8s.io'] });
  });

  it('honours a narrower supported list', () => {
    const n = negotiateSubprotocol([CLIENT_NODE], ['v4.channel.k8s.io']);
    expect(chosen(n)).toBe('v4.channel.k8s.io');
  });

  it('rejects supported names it cannot frame', () => {
    const n = negotiateSubprotocol(['v3.channel.k8s.io'], ['v3.channel.k8s.io']);
    expect(!n.ok && n.error.code).toBe(ErrorCode.CONFIG_INVALID);
  });
});

describe('framing', () => {
  it('binary: one channel byte then the payload', () => {
    expect(encodeMessage('binary', 1, Buffer.from('hi'))).toEqual(Buffer.from([1, 0x68, 0x69]));
    expect(encodeMessage('binary', 1, Buffer.alloc(0))).toEqual(Buffer.from([1]));
  });

  it("base64: '0'+channel then standard base64", () => {
    expect(encodeMessage('base64', 1, Buffer.from('\n'))).toBe('1Cg==');
    expect(encodeMessage('base64', 1, Buffer.alloc(0))).toBe('1');
  });

  it('decodes strict base64 like Go StdEncoding', () => {
    const d = (s: string): string | undefined => decodeBase64Strict(Buffer.from(s, 'latin1'))?.toString('latin1');
    expect(d('Zm9vCg==')).toBe('foo\n');
    expect(d('')).toBe('');
    expect(d('Zm9v\r\nCg==')).toBe('foo\n'); // CR/LF are skipped
    expect(d('Zm9vCg')).toBeUndefined(); // missing padding
    expect(d('Zm9v*g==')).toBeUndefined(); // outside the alphabet
    expect(d('Zm=vCg==')).toBeUndefined(); // padding in the middle
    expect(d('Z===')).toBeUndefined(); // too much padding
    expect(d('Zm9vCg=a')).toBeUndefined(); // data after padding
  });
});
