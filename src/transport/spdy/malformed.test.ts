// Randomised malformed input against a server-role connection. Seeded and bounded: set
// SPDY_FUZZ_SEED to reproduce or explore another seed. Every case must end the connection with
// GOAWAY(PROTOCOL_ERROR) and a typed BastionError, never with a crash or an unhandled error.
import zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { loadFixture, bytes } from '../../../test/fixtures/spdy/fixture.js';
import { FrameTap, PeerFramer, summary } from '../../../test/fixtures/spdy/frame-tap.js';
import { socketPair } from '../../../test/fixtures/spdy/socket-pair.js';
import { mulberry32 } from '../../../test/helpers/prng.js';
import { isBastionError, type BastionError, type ErrorCode } from '../../errors/index.js';
import { SpdyConnection } from './connection.js';
import { SPDY3_DICTIONARY } from './dictionary.js';
import { encodeData, encodeGoAway, encodePing, encodeRstStream, encodeSynStream, GoAwayStatus } from './frames.js';
import type { SpdyLimits } from './limits.js';

const SEED = Number(process.env.SPDY_FUZZ_SEED ?? 0x5eed5bd7);
const CASES_PER_KIND = 30;
const TIME_BUDGET_MS = 15_000;


class Rng {
  constructor(readonly next: () => number) {}
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }
  bytes(n: number): Buffer {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = this.int(0, 255);
    return b;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(0, items.length - 1)]!;
  }
  /** Splits a buffer at random points, as TCP might deliver it. */
  chunks(buf: Buffer): Buffer[] {
    const out: Buffer[] = [];
    let at = 0;
    while (at < buf.length) {
      const n = this.int(1, Math.max(1, Math.min(64, buf.length - at)));
      out.push(buf.subarray(at, at + n));
      at += n;
    }
    return out;
  }
}

const LIMITS: Partial<SpdyLimits> = {
  maxConcurrentStreams: 4,
  maxDataFramePayload: 64 * 1024,
  maxControlFramePayload: 8 * 1024,
  maxHeaderBlockSize: 4 * 1024,
  maxHeaderPairs: 16,
  closeTimeoutMs: 1_000,
};

/** A header block compressed as the first block of a connection (fresh zlib context). */
function firstBlock(raw: Buffer): Buffer {
  return zlib.deflateSync(raw, { dictionary: SPDY3_DICTIONARY, level: 9, finishFlush: zlib.constants.Z_SYNC_FLUSH });
}

function synStreamWith(streamId: number, headerBlock: Buffer): Buffer {
  return encodeSynStream({ streamId, associatedStreamId: 0, priority: 0, slot: 0, flags: 0, headerBlock });
}

function rawBlock(pairs: [string, string][], count = pairs.length): Buffer {
  const parts: Buffer[] = [u32(count)];
  for (const [n, v] of pairs) parts.push(u32(Buffer.byteLength(n)), Buffer.from(n), u32(Buffer.byteLength(v)), Buffer.from(v));
  return Buffer.concat(parts);
}

function flip(buf: Buffer, index: number, mask: number): void {
  buf.writeUInt8(buf.readUInt8(index) ^ mask, index);
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}

interface Case {
  kind: string;
  input: Buffer;
  /** Codes this kind of damage may produce. */
  codes: readonly ErrorCode[];
}

type Generator = (rng: Rng, peer: PeerFramer) => Promise<{ input: Buffer; codes: readonly ErrorCode[] }>;

const ANY_SPDY_ERROR: readonly ErrorCode[] = [
  'SPDY_PROTOCOL_ERROR',
  'SPDY_UNSUPPORTED_VERSION',
  'SPDY_FRAME_TOO_LARGE',
  'SPDY_HEADER_BLOCK_TOO_LARGE',
  'SPDY_COMPRESSION_ERROR',
  'SPDY_TOO_MANY_STREAMS',
  'SPDY_INVALID_STREAM',
];

const GENERATORS: Record<string, Generator> = {
  'random bytes': async (rng) => ({ input: rng.bytes(rng.int(1, 300)), codes: ANY_SPDY_ERROR }),

  'random bytes after a valid stream': async (rng, peer) => ({
    input: Buffer.concat([await peer.synStream(1, { streamtype: 'stdin' }), rng.bytes(rng.int(1, 300))]),
    codes: ANY_SPDY_ERROR,
  }),

  'truncated frame': async (rng, peer) => {
    const frames = [
      await peer.synStream(1, { streamtype: 'stdin' }),
      peer.data(1, rng.bytes(rng.int(1, 2000))),
      encodePing(rng.int(0, 1000) * 2 + 1),
      encodeRstStream(1, 5),
      encodeGoAway(0, 0),
    ];
    const victim = rng.pick(frames);
    const cut = rng.int(1, victim.length - 1); // strictly inside the frame
    const before = frames.slice(0, frames.indexOf(victim));
    return { input: Buffer.concat([...before, victim.subarray(0, cut)]), codes: ['SPDY_PROTOCOL_ERROR'] };
  },

  'bad version': async (rng) => {
    let version = rng.int(0, 0x7fff);
    if (version === 3) version = 2;
    const frame = encodePing(1);
    frame.writeUInt16BE(0x8000 | version, 0);
    frame.writeUInt16BE(rng.int(1, 9), 2);
    return { input: frame, codes: ['SPDY_UNSUPPORTED_VERSION'] };
  },

  'oversize length': async (rng) => {
    const header = Buffer.alloc(8);
    if (rng.next() < 0.5) {
      header.writeUInt32BE(rng.int(1, 0x7fffffff), 0); // DATA
      header.writeUInt32BE(rng.int(LIMITS.maxDataFramePayload! + 1, 0xffffff), 4);
    } else {
      header.writeUInt32BE((0x80030000 | rng.pick([1, 2, 4, 8])) >>> 0, 0); // header-bearing or SETTINGS
      header.writeUInt32BE(rng.int(LIMITS.maxControlFramePayload! + 1, 0xffffff), 4);
    }
    return { input: Buffer.concat([header, rng.bytes(rng.int(0, 100))]), codes: ['SPDY_FRAME_TOO_LARGE'] };
  },

  'corrupt zlib': async (rng) => {
    const good = firstBlock(rawBlock([['streamtype', 'stdin']]));
    const variants: (() => Buffer)[] = [
      () => rng.bytes(rng.int(1, 200)),
      () => {
        // A different dictionary id: the stream cannot be decoded with ours.
        const block = Buffer.from(good);
        flip(block, rng.int(2, 5), rng.int(1, 255));
        return block;
      },
      // Cut before the header block's content is complete (a cut of only the trailing sync-flush
      // marker is still a complete block, and legal).
      () => good.subarray(0, rng.int(1, 9)),
    ];
    // (A flip inside the deflate body may still decode to a valid block: that is covered by the
    // damaged-traffic case below, where an error is allowed but not required.)
    return {
      input: synStreamWith(1, rng.pick(variants)()),
      codes: ['SPDY_COMPRESSION_ERROR', 'SPDY_PROTOCOL_ERROR', 'SPDY_HEADER_BLOCK_TOO_LARGE'],
    };
  },

  'bad header block': async (rng) => {
    const variants: [Buffer, ErrorCode][] = [
      [rawBlock([['StreamType', 'stdin']]), 'SPDY_PROTOCOL_ERROR'],
      [rawBlock([['streamtype', 'stdin'], ['streamtype', 'stdout']]), 'SPDY_PROTOCOL_ERROR'],
      [rawBlock([['', 'x']]), 'SPDY_PROTOCOL_ERROR'],
      [rawBlock([['a', 'x\0\0y']]), 'SPDY_PROTOCOL_ERROR'],
      [rawBlock([['host', 'evil']]), 'SPDY_PROTOCOL_ERROR'],
      [rawBlock([['streamtype', 'stdin']], 2), 'SPDY_PROTOCOL_ERROR'], // count says 2
      [Buffer.concat([rawBlock([['streamtype', 'stdin']]), rng.bytes(rng.int(1, 9))]), 'SPDY_PROTOCOL_ERROR'],
      [rawBlock([], rng.int(17, 0xffffffff)), 'SPDY_HEADER_BLOCK_TOO_LARGE'],
      [rawBlock([['x', 'v'.repeat(5000)]]), 'SPDY_HEADER_BLOCK_TOO_LARGE'],
      [rng.bytes(rng.int(0, 3)), 'SPDY_PROTOCOL_ERROR'],
    ];
    const [raw, code] = rng.pick(variants);
    return { input: synStreamWith(1, firstBlock(raw)), codes: [code] };
  },

  'duplicate or decreasing stream id': async (rng, peer) => {
    const first = rng.int(1, 50) * 2 + 1;
    const second = rng.next() < 0.5 ? first : rng.int(0, (first - 1) / 2) * 2 + 1;
    return {
      input: Buffer.concat([await peer.synStream(first, { streamtype: 'a' }), await peer.synStream(second, { streamtype: 'b' })]),
      codes: ['SPDY_PROTOCOL_ERROR'],
    };
  },

  'stream id of the server’s parity': async (rng, peer) => ({
    input: await peer.synStream(rng.int(1, 1000) * 2, { streamtype: 'a' }),
    codes: ['SPDY_PROTOCOL_ERROR'],
  }),

  'too many streams': async (rng, peer) => {
    const frames: Buffer[] = [];
    const n = LIMITS.maxConcurrentStreams! + rng.int(1, 3);
    for (let i = 0; i < n; i++) frames.push(await peer.synStream(2 * i + 1, { streamtype: `s${i}` }));
    return { input: Buffer.concat(frames), codes: ['SPDY_TOO_MANY_STREAMS'] };
  },

  'DATA on an unknown stream': async (rng, peer) => {
    const opened = await peer.synStream(1, { streamtype: 'stdin' });
    const id = rng.next() < 0.5 ? rng.int(2, 1000) * 2 + 1 : rng.int(1, 1000) * 2; // never opened / our parity
    return { input: Buffer.concat([opened, encodeData(id, rng.bytes(rng.int(0, 100)))]), codes: ['SPDY_INVALID_STREAM'] };
  },

  'DATA after the peer’s FIN': async (rng, peer) => ({
    input: Buffer.concat([await peer.synStream(1, { streamtype: 'stdin' }), peer.data(1, 'x', true), peer.data(1, rng.bytes(rng.int(1, 50)))]),
    codes: ['SPDY_PROTOCOL_ERROR'],
  }),
};

interface Outcome {
  error: BastionError | undefined;
  emitted: BastionError[];
  frames: string[];
}

/** Feeds `input` (in random chunks, then EOF) to a fresh server connection and waits for the end. */
async function run(rng: Rng, input: Buffer): Promise<Outcome> {
  const pair = socketPair();
  const conn = new SpdyConnection(pair.server, { role: 'server', limits: LIMITS });
  const emitted: BastionError[] = [];
  conn.on('error', (err) => emitted.push(err));
  conn.on('stream', (s) => {
    s.reply();
    s.resume();
  });
  const tap = new FrameTap(pair.client);
  for (const chunk of rng.chunks(input)) pair.client.write(chunk);
  pair.client.end();
  await tap.untilEnded(3_000);
  await conn.closed;
  return { error: conn.error, emitted, frames: tap.frames.map(summary) };
}

describe(`malformed input (seed 0x${SEED.toString(16)})`, () => {
  const rng = new Rng(mulberry32(SEED));
  const started = Date.now();

  it.each(Object.keys(GENERATORS))('%s: ends the connection with GOAWAY(PROTOCOL_ERROR) and a typed error', async (kind) => {
    const generate = GENERATORS[kind]!;
    for (let i = 0; i < CASES_PER_KIND && Date.now() - started < TIME_BUDGET_MS; i++) {
      const peer = new PeerFramer();
      const { input, codes } = await generate(rng, peer);
      peer.close();
      const outcome = await run(rng, input);
      const context = `${kind} #${i}: input ${input.toString('hex').slice(0, 200)} → ${outcome.frames.join(' | ')}`;
      expect(isBastionError(outcome.error), context).toBe(true);
      expect(codes, context).toContain(outcome.error!.code);
      expect(outcome.emitted, context).toEqual([outcome.error]);
      expect(outcome.frames.at(-1), context).toBe(`GOAWAY last=${lastGood(outcome.frames)} status=${GoAwayStatus.PROTOCOL_ERROR}`);
    }
  });

  it('survives random damage to real kubectl traffic (errors, if any, are typed and end the session)', async () => {
    const capture = bytes(loadFixture('kubectl-1.33-exec-it.json'), 'c2s');
    for (let i = 0; i < CASES_PER_KIND * 2 && Date.now() - started < TIME_BUDGET_MS; i++) {
      const damaged = Buffer.from(capture);
      for (let flips = rng.int(1, 3); flips > 0; flips--) flip(damaged, rng.int(0, damaged.length - 1), 1 << rng.int(0, 7));
      const cut = rng.next() < 0.3 ? rng.int(1, damaged.length) : damaged.length;
      const outcome = await run(rng, damaged.subarray(0, cut));
      if (outcome.error) {
        expect(ANY_SPDY_ERROR).toContain(outcome.error.code);
        expect(outcome.frames.at(-1)).toMatch(/^GOAWAY last=\d+ status=1$/);
      }
    }
  });
});

/** The GOAWAY names the highest stream the server accepted (SYN_REPLY) or saw. */
function lastGood(frames: string[]): number {
  return Number(/^GOAWAY last=(\d+)/.exec(frames.at(-1) ?? '')?.[1] ?? -1);
}
