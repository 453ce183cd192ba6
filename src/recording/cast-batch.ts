// The cast derived from a batch of recorded chunks, off the relay's path: it runs in the cast
// worker thread (cast-worker.ts), which gets each batch when the recorder writes it, never a chunk
// at a time.
//
// Output chunks of one channel that follow each other within RUN_SPAN_US become ONE event (the
// time of the first), so a bulk transfer costs one line per ~10 ms, while typing and prompts keep
// their own events. A run's bytes are never decoded: when they are valid UTF-8 the line is built
// from the bytes (utf8EventLine), so the event's text is exactly them; a character split across
// chunks or batches is held back (per channel) and written whole with the bytes that complete it.
// A run that is NOT valid UTF-8 is not shown as text (a terminal would show replacement
// characters): the cast gets one marker `binary output on stdout: N bytes, kept in <ses>.raw`,
// and the bytes are only in the sidecar.
import { isUtf8 } from 'node:buffer';
import type { AsciicastV2Encoder } from './asciicast-v2.js';
import type { AsciicastV3Encoder } from './asciicast-v3.js';
import { utf8EventLine } from './cast-lines.js';
import type { CastHeader, EventCode } from './events.js';
import { completeUtf8Length, utf8SequenceLength } from './utf8-decoder.js';

export type TextChannel = 'stdin' | 'stdout' | 'stderr';

/** Chunks of one channel closer together than this share one cast event. */
export const RUN_SPAN_US = 10_000;

/** The cast marker standing for a run of bytes that is not valid UTF-8. */
export function binaryLabel(channel: TextChannel, bytes: number, rawName: string): string {
  return `binary ${channel === 'stdin' ? 'input on stdin' : `output on ${channel}`}: ${bytes} bytes, kept in ${rawName}`;
}

interface Run {
  channel: TextChannel;
  timeUs: number;
  parts: Buffer[];
}

export class CastBatch {
  private out: Buffer[] = [];
  private run: Run | undefined;
  private readonly carry = new Map<TextChannel, Buffer>();
  headerWritten = false;
  eventCount = 0;

  constructor(
    private readonly encoder: AsciicastV2Encoder | AsciicastV3Encoder,
    /** The sidecar's file name, for binary markers. */
    private readonly rawName: string,
  ) {}

  header(h: CastHeader): void {
    this.out.push(Buffer.from(this.encoder.header(h), 'utf8'));
    this.headerWritten = true;
  }

  /** Output (stdout, stderr) or input (stdin) bytes at `timeUs`. */
  text(channel: TextChannel, timeUs: number, data: Buffer): void {
    const run = this.run;
    if (run && run.channel === channel && timeUs - run.timeUs < RUN_SPAN_US) {
      run.parts.push(data);
      return;
    }
    this.closeRun();
    this.run = { channel, timeUs, parts: [data] };
  }

  /** Any other event (marker, resize, exit); the text before it is written first. */
  event(timeUs: number, code: EventCode, data: string): void {
    this.closeRun();
    this.out.push(Buffer.from(this.encoder.event({ timeUs, code, data }), 'utf8'));
    this.eventCount += 1;
  }

  /** The session ended: bytes of a character that never completed are written as binary. */
  endText(timeUs: number): void {
    this.closeRun();
    for (const [channel, rest] of this.carry) this.binary(channel, timeUs, rest.length);
    this.carry.clear();
  }

  /** The cast bytes derived so far, joined for one write; empty when there are none. */
  take(): Buffer[] {
    const out = this.takeParts();
    return out.length > 1 ? [Buffer.concat(out)] : out;
  }

  /** The cast bytes derived so far, in order, not joined (the caller joins them where it likes). */
  takeParts(): Buffer[] {
    this.closeRun();
    const out = this.out;
    this.out = [];
    return out;
  }

  private closeRun(): void {
    const run = this.run;
    if (!run) return;
    this.run = undefined;
    const text = this.validText(run);
    if (text === undefined) return;
    if (text.length === 0) return;
    this.out.push(...utf8EventLine(this.encoder.time(run.timeUs), run.channel === 'stdin' ? 'i' : 'o', text));
    this.eventCount += 1;
  }

  /**
   * The run's bytes (with the channel's held-back character first) as valid UTF-8 pieces, in
   * order, without joining them (a copy of every byte): each part is checked alone, and a
   * character split between parts is joined (a few bytes) and checked whole. An incomplete
   * character at the end is held back for the channel's next run. Undefined when the run is not
   * valid UTF-8: then it was written as a binary marker (its incomplete tail with it: held back,
   * it would spoil the next text).
   */
  private validText(run: Run): Buffer[] | undefined {
    let carry = this.carry.get(run.channel);
    this.carry.delete(run.channel);
    const pieces: Buffer[] = [];
    let total = carry?.length ?? 0;
    let valid = true;
    for (let part of run.parts) {
      total += part.length;
      if (!valid) continue;
      if (carry) {
        const need = utf8SequenceLength(carry[0]!) - carry.length;
        if (part.length < need) {
          carry = Buffer.concat([carry, part]);
          continue;
        }
        const joined = Buffer.concat([carry, part.subarray(0, need)]);
        carry = undefined;
        if (!isUtf8(joined)) valid = false;
        else pieces.push(joined);
        part = part.subarray(need);
      }
      const complete = completeUtf8Length(part);
      const body = part.subarray(0, complete);
      if (!isUtf8(body)) valid = false;
      else if (body.length > 0) pieces.push(body);
      if (complete < part.length) carry = part.subarray(complete);
    }
    if (!valid) {
      this.binary(run.channel, run.timeUs, total);
      return undefined;
    }
    if (carry) this.carry.set(run.channel, Buffer.from(carry));
    return pieces;
  }

  private binary(channel: TextChannel, timeUs: number, bytes: number): void {
    this.out.push(Buffer.from(this.encoder.event({ timeUs, code: 'm', data: binaryLabel(channel, bytes, this.rawName) }), 'utf8'));
    this.eventCount += 1;
  }
}
