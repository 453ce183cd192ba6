// The cast derived from a batch of recorded chunks, off the relay's path: the recorder hands each
// batch here when it writes it (see recorder.ts), never a chunk at a time.
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
import { completeUtf8Length } from './utf8-decoder.js';

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

  /** The cast bytes derived so far (for one write); empty when there are none. */
  take(): Buffer[] {
    this.closeRun();
    const out = this.out;
    this.out = [];
    return out;
  }

  private closeRun(): void {
    const run = this.run;
    if (!run) return;
    this.run = undefined;
    const held = this.carry.get(run.channel);
    const parts = held ? [held, ...run.parts] : run.parts;
    const bytes = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
    const complete = completeUtf8Length(bytes);
    const body = bytes.subarray(0, complete);
    this.carry.delete(run.channel);
    // Binary takes its incomplete tail with it: held back, it would spoil the next text.
    if (!isUtf8(body)) return this.binary(run.channel, run.timeUs, bytes.length);
    if (complete < bytes.length) this.carry.set(run.channel, Buffer.from(bytes.subarray(complete)));
    if (complete === 0) return;
    this.out.push(utf8EventLine(this.encoder.time(run.timeUs), run.channel === 'stdin' ? 'i' : 'o', body));
    this.eventCount += 1;
  }

  private binary(channel: TextChannel, timeUs: number, bytes: number): void {
    this.out.push(Buffer.from(this.encoder.event({ timeUs, code: 'm', data: binaryLabel(channel, bytes, this.rawName) }), 'utf8'));
    this.eventCount += 1;
  }
}
