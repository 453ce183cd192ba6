// asciicast v3: header `{"version":3,"term":{"cols":C,"rows":R,...},...}`, then one
// `[interval, code, data]` line per event, `interval` = seconds since the PREVIOUS event, with
// millisecond precision written as `S.mmm` (as the asciinema 3 CLI does). Rounding does not drift:
// the encoder rounds each event's absolute time to the millisecond and writes the difference to
// the previous rounded time, which is the spec's "carry the rounding error forward". Lines starting
// with `#` are comments. `x` = exit, data is the exit status as a string. The encoder;
// cast-reader.ts reads both versions.
import { eventLine } from './cast-lines.js';
import type { CastHeader, RecordingEvent } from './events.js';

/** Milliseconds to `S.mmm`. */
export function formatV3Interval(ms: number): string {
  const t = Math.max(0, Math.round(ms));
  return `${Math.floor(t / 1000)}.${String(t % 1000).padStart(3, '0')}`;
}


export function encodeV3Header(h: CastHeader): string {
  const term: Record<string, unknown> = { cols: h.cols, rows: h.rows };
  if (h.termType !== undefined) term.type = h.termType;
  if (h.termVersion !== undefined) term.version = h.termVersion;
  if (h.theme !== undefined) term.theme = h.theme;
  const out: Record<string, unknown> = { version: 3, term };
  if (h.timestamp !== undefined) out.timestamp = h.timestamp;
  if (h.idleTimeLimit !== undefined) out.idle_time_limit = h.idleTimeLimit;
  if (h.command !== undefined) out.command = h.command;
  if (h.title !== undefined) out.title = h.title;
  if (h.env !== undefined && Object.keys(h.env).length > 0) out.env = h.env;
  if (h.tags !== undefined) out.tags = h.tags;
  for (const [k, v] of Object.entries(h.extra)) if (!(k in out)) out[k] = v;
  return `${JSON.stringify(out)}\n`;
}

export class AsciicastV3Encoder {
  /** The previous event's absolute time, rounded to the millisecond. */
  private prevMs = 0;

  header(h: CastHeader): string {
    return encodeV3Header(h);
  }

  event(e: RecordingEvent): string {
    return eventLine(this.time(e.timeUs), e.code, e.data);
  }

  /** The time field of the next event (advances the encoder; see utf8EventLine). */
  time(timeUs: number): string {
    const ms = Math.max(this.prevMs, Math.round(timeUs / 1000));
    const interval = ms - this.prevMs;
    this.prevMs = ms;
    return formatV3Interval(interval);
  }

  /** A `#` comment line (never the first line of a file). Newlines in the text are flattened. */
  comment(text: string): string {
    return `# ${text.replace(/[\r\n]+/g, ' ')}\n`;
  }
}

export function encodeAsciicastV3(cast: { header: CastHeader; events: readonly RecordingEvent[] }): string {
  const enc = new AsciicastV3Encoder();
  let out = enc.header(cast.header);
  for (const e of cast.events) out += enc.event(e);
  return out;
}
