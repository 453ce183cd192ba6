import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../../errors/index.js';
import { ChannelReceiver, CloseCode, type ReceiveResult } from './receiver.js';
import { SUBPROTOCOLS, type WebSocketSubprotocol } from './subprotocols.js';

function sub(name: string): WebSocketSubprotocol {
  const s = SUBPROTOCOLS.get(name);
  if (!s) throw new Error(name);
  return s;
}
const V5 = sub('v5.channel.k8s.io');
const V4 = sub('v4.channel.k8s.io');
const B64 = sub('v4.base64.channel.k8s.io');

const bin = (...bytes: number[]): Buffer => Buffer.from(bytes);
const withText = (channel: number, text: string): Buffer => Buffer.concat([bin(channel), Buffer.from(text)]);

function events(r: ReceiveResult): unknown[] {
  if (!r.ok) throw r.failure.error;
  return r.events;
}
function failure(r: ReceiveResult): { closeCode: number; code: string } {
  if (r.ok) throw new Error('expected a failure');
  return { closeCode: r.failure.closeCode, code: r.failure.error.code };
}

describe('ChannelReceiver', () => {
  it('delivers stdin and ignores empty messages and empty payloads', () => {
    const r = new ChannelReceiver(V5, { stdin: true, resize: false });
    expect(events(r.receive(withText(0, 'ls\r'), true))).toEqual([{ kind: 'stdin', data: Buffer.from('ls\r') }]);
    expect(events(r.receive(Buffer.alloc(0), true))).toEqual([]);
    expect(events(r.receive(bin(0), true))).toEqual([]);
  });

  it('discards unknown channels, output channels, and stdin nobody asked for', () => {
    const r = new ChannelReceiver(V5, { stdin: false, resize: false });
    for (const ch of [0, 1, 2, 3, 4, 7, 200]) expect(events(r.receive(withText(ch, 'x'), true))).toEqual([]);
  });

  it('v5: [255, 0] half-closes stdin once; later stdin is dropped', () => {
    const r = new ChannelReceiver(V5, { stdin: true, resize: true });
    expect(events(r.receive(bin(255, 0), true))).toEqual([{ kind: 'stdin-end' }]);
    expect(events(r.receive(bin(255, 0), true))).toEqual([]);
    expect(events(r.receive(withText(0, 'late'), true))).toEqual([]);
    // Closing an output channel is legal and means nothing.
    expect(events(r.receive(bin(255, 1), true))).toEqual([]);
  });

  it('v5: a CLOSE of the wrong length or for an unknown channel is a protocol error (1002)', () => {
    const r = new ChannelReceiver(V5, { stdin: true, resize: false });
    expect(failure(r.receive(bin(255, 0, 0), true))).toEqual({ closeCode: CloseCode.protocolError, code: ErrorCode.WS_BAD_MESSAGE });
    expect(failure(r.receive(bin(255), true))).toEqual({ closeCode: CloseCode.protocolError, code: ErrorCode.WS_BAD_MESSAGE });
    expect(failure(r.receive(bin(255, 9), true))).toEqual({ closeCode: CloseCode.protocolError, code: ErrorCode.WS_UNKNOWN_CHANNEL });
  });

  it('v4: 255 is just an unknown channel and is discarded, as apimachinery does', () => {
    const r = new ChannelReceiver(V4, { stdin: true, resize: false });
    expect(events(r.receive(bin(255, 0), true))).toEqual([]);
    expect(events(r.receive(bin(255, 0, 0), true))).toEqual([]);
    expect(events(r.receive(withText(0, 'still open'), true))).toEqual([{ kind: 'stdin', data: Buffer.from('still open') }]);
  });

  it('reads text and binary messages alike, as apimachinery does (the Python client sends stdin as text on v4)', () => {
    expect(events(new ChannelReceiver(V5, { stdin: true, resize: false }).receive(withText(0, 'x'), false))).toEqual([{ kind: 'stdin', data: Buffer.from('x') }]);
    expect(events(new ChannelReceiver(V4, { stdin: true, resize: false }).receive(withText(0, 'héllo'), false))).toEqual([{ kind: 'stdin', data: Buffer.from('héllo') }]);
    expect(events(new ChannelReceiver(B64, { stdin: true, resize: false }).receive(Buffer.from('0eA=='), true))).toEqual([{ kind: 'stdin', data: Buffer.from('x') }]);
  });

  it('base64: decodes stdin, rejects bad base64 (1007), skips unread channels without decoding', () => {
    const r = new ChannelReceiver(B64, { stdin: true, resize: false });
    expect(events(r.receive(Buffer.from('0aGVsbG8='), false))).toEqual([{ kind: 'stdin', data: Buffer.from('hello') }]);
    expect(events(r.receive(Buffer.from('0'), false))).toEqual([]);
    expect(events(r.receive(Buffer.from('9!!!'), false))).toEqual([]);
    expect(failure(r.receive(Buffer.from('0!!!!'), false))).toEqual({ closeCode: CloseCode.invalidPayload, code: ErrorCode.WS_BAD_MESSAGE });
  });

  it('resize: split across messages, two in one message, ignored without a TTY', () => {
    const r = new ChannelReceiver(V5, { stdin: false, resize: true });
    expect(events(r.receive(withText(4, '{"Width":100,'), true))).toEqual([]);
    expect(events(r.receive(withText(4, '"Height":30}\n'), true))).toEqual([{ kind: 'resize', size: { width: 100, height: 30 } }]);
    expect(events(r.receive(withText(4, '{"Width":101,"Height":31}\n{"Width":100,"Height":30}\n'), true))).toEqual([
      { kind: 'resize', size: { width: 101, height: 31 } },
      { kind: 'resize', size: { width: 100, height: 30 } },
    ]);
    const noTty = new ChannelReceiver(V5, { stdin: false, resize: false });
    expect(events(noTty.receive(withText(4, 'not even json'), true))).toEqual([]);
  });

  it('bad resize JSON fails with BAD_RESIZE (1007)', () => {
    const r = new ChannelReceiver(V4, { stdin: false, resize: true });
    expect(failure(r.receive(withText(4, '[1,2]'), true))).toEqual({ closeCode: CloseCode.invalidPayload, code: ErrorCode.BAD_RESIZE });
  });
});
