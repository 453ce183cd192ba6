// What the recorder sends the cast worker for one batch, and how the worker applies it: the calls
// the recorder would have made on a CastBatch, in order, with the text bytes of the whole batch
// copied into one buffer (handed over, not cloned) and referred to by offset. Shared by both sides.
// The worker also keeps each session's channel SHA-256s (off the relay's path): every `text` op's
// bytes are hashed into its channel, and the bytes of a channel that are not cast text (a kubectl
// cp tar stream, resize records) come as `hash` ops in the same buffer, in the channel's order.
import { AsciicastV2Encoder } from './asciicast-v2.js';
import { AsciicastV3Encoder } from './asciicast-v3.js';
import { CastBatch, type TextChannel } from './cast-batch.js';
import type { CastFormat, CastHeader, EventCode } from './events.js';
import { RawChannel, type ChannelHashes, type HashedChannel } from './raw-sidecar.js';

export type CastOp =
  | { op: 'header'; header: CastHeader }
  | { op: 'text'; channel: TextChannel; timeUs: number; offset: number; length: number }
  | { op: 'event'; timeUs: number; code: EventCode; data: string }
  | { op: 'endText'; timeUs: number }
  /** Bytes of a hashed channel that are not cast text: only hashed. */
  | { op: 'hash'; channel: HashedChannel; offset: number; length: number };

export type ToCastWorker =
  | { kind: 'open'; session: number; format: CastFormat; rawName: string }
  /** `final`: the last batch; the reply carries the channel digests. */
  /** `castSpares`: buffers of earlier casts, written and handed back for the worker to fill again. */
  | { kind: 'derive'; session: number; ops: CastOp[]; data: Uint8Array; final?: boolean; castSpares?: ArrayBuffer[] }
  | { kind: 'drop'; session: number };

export type FromCastWorker =
  | { kind: 'cast'; session: number; cast: Uint8Array; eventCount: number; spare?: ArrayBuffer; digests?: Record<HashedChannel, string> }
  | { kind: 'failed'; session: number; error: string };

/** Text buffers at least this large are handed back with the reply and reused (no fresh pages per batch). */
export const REUSED_TEXT_BUFFER = 64 * 1024;

/**
 * A few large buffers handed back across the thread boundary, to be filled again: the text
 * buffers (main thread) and the cast buffers (the worker). Each buffer it gives owns its memory,
 * so it can be transferred, not copied.
 */
export class SpareBuffers {
  private readonly free: ArrayBuffer[] = [];

  constructor(private readonly max = 4) {}

  /** A buffer for `bytes`: a spare when it is large, else a new one. */
  take(bytes: number): Buffer {
    if (bytes < REUSED_TEXT_BUFFER) return Buffer.allocUnsafeSlow(bytes);
    const i = this.free.findIndex((b) => b.byteLength >= bytes);
    if (i >= 0) return Buffer.from(this.free.splice(i, 1)[0]!, 0, bytes);
    // Rounded up to a MiB so that it fits most later batches too.
    return Buffer.from(new ArrayBuffer(Math.ceil(bytes / 2 ** 20) * 2 ** 20), 0, bytes);
  }

  /** Keeps `ab` to be filled again (while there is room). */
  give(ab: ArrayBuffer): void {
    if (this.free.length < this.max) this.free.push(ab);
  }
}

export function newCastBatch(format: CastFormat, rawName: string): CastBatch {
  return new CastBatch(format === 'v2' ? new AsciicastV2Encoder() : new AsciicastV3Encoder(), rawName);
}

/**
 * Applies one batch's calls (hashing each channel's bytes in order); returns the cast bytes they
 * make, joined in one buffer from `alloc` (maybe empty).
 */
export function applyCastOps(batch: CastBatch, hashes: ChannelHashes, ops: readonly CastOp[], data: Uint8Array, alloc: (bytes: number) => Buffer = Buffer.allocUnsafeSlow): Buffer {
  const bytes = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  for (const o of ops) {
    if (o.op === 'text') {
      const text = bytes.subarray(o.offset, o.offset + o.length);
      hashes.update(RawChannel[o.channel], text);
      batch.text(o.channel, o.timeUs, text);
    } else if (o.op === 'hash') hashes.update(RawChannel[o.channel], bytes.subarray(o.offset, o.offset + o.length));
    else if (o.op === 'event') batch.event(o.timeUs, o.code, o.data);
    else if (o.op === 'header') batch.header(o.header);
    else batch.endText(o.timeUs);
  }
  const parts = batch.takeParts();
  let total = 0;
  for (const p of parts) total += p.length;
  if (total === 0) return Buffer.alloc(0);
  const out = alloc(total);
  let at = 0;
  for (const p of parts) at += p.copy(out, at);
  return out;
}
