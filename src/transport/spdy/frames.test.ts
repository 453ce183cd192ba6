import { describe, expect, it } from 'vitest';
import { isBastionError } from '../../errors/index.js';
import { SPDY3_DICTIONARY, SPDY3_DICTIONARY_ID } from './dictionary.js';
import { FrameReader } from './frame-reader.js';
import {
  encodeData,
  encodeFrame,
  encodeGoAway,
  encodePing,
  encodeRstStream,
  encodeSynReply,
  encodeWindowUpdate,
  Flag,
  type Frame,
} from './frames.js';
import { DEFAULT_LIMITS } from './limits.js';

function adler32(buf: Buffer): number {
  let a = 1;
  let b = 0;
  for (const byte of buf) {
    a = (a + byte) % 65521;
    b = (b + a) % 65521;
  }
  return ((b << 16) | a) >>> 0;
}

const reader = (): FrameReader => new FrameReader(DEFAULT_LIMITS);

/** One frame of every type, with non-trivial field values. */
const SAMPLES: Frame[] = [
  { kind: 'DATA', streamId: 3, flags: 0, data: Buffer.from('hello\nworld\n') },
  { kind: 'DATA', streamId: 0x7fffffff, flags: Flag.FIN, data: Buffer.alloc(0) },
  {
    kind: 'SYN_STREAM',
    streamId: 5,
    associatedStreamId: 0,
    priority: 7,
    slot: 9,
    flags: Flag.FIN | Flag.UNIDIRECTIONAL,
    headerBlock: Buffer.from('78f9e3c6a7c26260606004a7b392a2d4c45c6851c29a0a0a6800000000ffff', 'hex'),
  },
  { kind: 'SYN_REPLY', streamId: 1, flags: Flag.FIN, headerBlock: Buffer.from('020100000000ffff', 'hex') },
  { kind: 'RST_STREAM', streamId: 7, status: 5 },
  { kind: 'SETTINGS', flags: Flag.CLEAR_SETTINGS, entries: [{ flags: 1, id: 4, value: 100 }, { flags: 0, id: 7, value: 65536 }] },
  { kind: 'SETTINGS', flags: 0, entries: [] },
  { kind: 'PING', id: 0xfffffffe },
  { kind: 'GOAWAY', lastGoodStreamId: 9, status: 1 },
  { kind: 'HEADERS', streamId: 11, flags: 0, headerBlock: Buffer.from('c22ac5565c92925f5a02000000ffff', 'hex') },
  { kind: 'WINDOW_UPDATE', streamId: 0, delta: 0x7fffffff },
];

describe('SPDY/3 dictionary', () => {
  it('is the 1423-byte dictionary whose Adler-32 is the id kubectl sends', () => {
    expect(SPDY3_DICTIONARY.length).toBe(1423);
    expect(adler32(SPDY3_DICTIONARY)).toBe(0xe3c6a7c2);
    expect(SPDY3_DICTIONARY_ID).toBe(0xe3c6a7c2);
  });
});

describe('frame encoders', () => {
  it.each(SAMPLES.map((f) => [f.kind, f] as const))('round-trips %s', (_kind, frame) => {
    expect(reader().push(encodeFrame(frame))).toEqual([frame]);
  });

  it('writes the wire layout of protocol.md §2.2', () => {
    expect(encodePing(1).toString('hex')).toBe('800300060000000400000001');
    expect(encodeRstStream(7, 5).toString('hex')).toBe('80030003000000080000000700000005');
    expect(encodeGoAway(0, 0).toString('hex')).toBe('80030007000000080000000000000000');
    expect(encodeData(3, Buffer.alloc(0), true).toString('hex')).toBe('0000000301000000');
    expect(encodeSynReply(1, Buffer.from('78f9e3c6a7c262000200000000ffff', 'hex')).toString('hex')).toBe(
      '8003000200000013' + '00000001' + '78f9e3c6a7c262000200000000ffff',
    );
    expect(encodeWindowUpdate(1, 1).toString('hex')).toBe('80030009000000080000000100000001');
  });

  it('refuses values that do not fit the wire', () => {
    expect(() => encodeRstStream(0x80000000, 5)).toThrow(RangeError);
    expect(() => encodeData(1, Buffer.alloc(0x1000000))).toThrow(RangeError);
  });
});

describe('FrameReader', () => {
  const all = Buffer.concat(SAMPLES.map(encodeFrame));

  it('decodes a multi-frame buffer split at every point', () => {
    for (let split = 0; split <= all.length; split++) {
      const r = reader();
      const frames = [...r.push(all.subarray(0, split)), ...r.push(all.subarray(split))];
      expect(frames).toEqual(SAMPLES);
      expect(r.midFrame).toBe(false);
    }
  });

  it('decodes the same buffer fed one byte at a time, and split in three at many points', () => {
    const r = reader();
    const frames: Frame[] = [];
    for (let i = 0; i < all.length; i++) frames.push(...r.push(all.subarray(i, i + 1)));
    expect(frames).toEqual(SAMPLES);
    for (let i = 0; i < all.length; i += 7) {
      for (let j = i; j < all.length; j += 13) {
        const r3 = reader();
        expect([...r3.push(all.subarray(0, i)), ...r3.push(all.subarray(i, j)), ...r3.push(all.subarray(j))]).toEqual(SAMPLES);
      }
    }
  });

  it('reports a partial frame as midFrame and holds only what it was given', () => {
    const r = reader();
    const ping = encodePing(3);
    expect(r.push(ping.subarray(0, 5))).toEqual([]);
    expect(r.midFrame).toBe(true);
    expect(r.bufferedBytes).toBe(5); // the 8-byte header is not complete yet
  });

  it('skips unknown control frame types (SPDY/3 says ignore them)', () => {
    const unknown = Buffer.from('8003000a00000003010203', 'hex'); // type 10 (CREDENTIAL), 3 bytes
    expect(reader().push(Buffer.concat([unknown, encodePing(1)]))).toEqual([{ kind: 'PING', id: 1 }]);
  });

  const invalid: [string, string, string][] = [
    ['version 2', '800200060000000400000001', 'SPDY_UNSUPPORTED_VERSION'],
    ['version 0', '800000060000000400000001', 'SPDY_UNSUPPORTED_VERSION'],
    ['PING with flags', '800300060100000400000001', 'SPDY_PROTOCOL_ERROR'],
    ['PING of length 8', '80030006000000080000000100000000', 'SPDY_PROTOCOL_ERROR'],
    ['RST_STREAM of length 4', '800300030000000400000001', 'SPDY_PROTOCOL_ERROR'],
    ['RST_STREAM status 0', '80030003000000080000000100000000', 'SPDY_PROTOCOL_ERROR'],
    ['RST_STREAM status 12', '8003000300000008000000010000000c', 'SPDY_PROTOCOL_ERROR'],
    ['RST_STREAM stream 0', '80030003000000080000000000000005', 'SPDY_PROTOCOL_ERROR'],
    ['RST_STREAM reserved bit', '80030003000000088000000100000005', 'SPDY_PROTOCOL_ERROR'],
    ['GOAWAY status 3', '80030007000000080000000000000003', 'SPDY_PROTOCOL_ERROR'],
    ['GOAWAY reserved bit', '80030007000000088000000000000000', 'SPDY_PROTOCOL_ERROR'],
    ['SYN_STREAM too short', '800300010000000900000001000000000000', 'SPDY_PROTOCOL_ERROR'],
    ['SYN_STREAM stream 0', '800300010000000a00000000000000000000', 'SPDY_PROTOCOL_ERROR'],
    ['SYN_STREAM unused priority bits', '800300010000000a00000001000000000100', 'SPDY_PROTOCOL_ERROR'],
    ['SYN_STREAM unknown flag', '800300010400000a00000001000000000000', 'SPDY_PROTOCOL_ERROR'],
    ['SYN_REPLY flag 2', '800300020200000400000001', 'SPDY_PROTOCOL_ERROR'],
    ['SETTINGS count mismatch', '800300040000000c000000020000000100000001', 'SPDY_PROTOCOL_ERROR'],
    ['SETTINGS entry flags 3', '800300040000000c000000010300000100000001', 'SPDY_PROTOCOL_ERROR'],
    ['WINDOW_UPDATE delta 0', '80030009000000080000000100000000', 'SPDY_PROTOCOL_ERROR'],
    ['DATA stream 0', '0000000000000001ff', 'SPDY_PROTOCOL_ERROR'],
    ['DATA flag 2', '0000000102000000', 'SPDY_PROTOCOL_ERROR'],
    ['DATA over the limit', '0000000100ffffff', 'SPDY_FRAME_TOO_LARGE'],
    ['control frame over the limit', '80030001000fffff', 'SPDY_FRAME_TOO_LARGE'],
  ];

  it.each(invalid)('rejects %s with %s', (_name, hex, code) => {
    const r = reader();
    let caught: unknown;
    try {
      r.push(Buffer.from(hex, 'hex'));
    } catch (err) {
      caught = err;
    }
    expect(isBastionError(caught)).toBe(true);
    expect((caught as { code: string }).code).toBe(code);
    // Failed for good: later input does not resurrect it.
    expect(() => r.push(encodePing(1))).toThrow();
  });

  it('rejects an oversize frame from its header, before buffering the payload', () => {
    const r = new FrameReader({ maxDataFramePayload: 1024, maxControlFramePayload: 1024 });
    expect(() => r.push(Buffer.from('0000000100000401', 'hex'))).toThrow(expect.objectContaining({ code: 'SPDY_FRAME_TOO_LARGE' }));
    expect(r.bufferedBytes).toBe(0);
  });
});
