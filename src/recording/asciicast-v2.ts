// asciicast v2: header `{"version":2,"width":W,"height":H,...}`, then one `[time, code, data]`
// line per event, `time` = ABSOLUTE seconds since the start, written like the asciinema CLI does:
// microsecond precision with trailing zeros trimmed, at least one decimal ("0.0", "12.3",
// "1.000001"). The spec's codes are o i m r; there is no exit event (the recorder writes the exit
// status as a marker). The encoder; cast-reader.ts reads both versions.
import { eventLine } from './cast-lines.js';
import type { CastHeader, RecordingEvent } from './events.js';

/** Microseconds to `S.ffffff` with trailing zeros trimmed (never fewer than one decimal). */
export function formatV2Time(us: number): string {
  const t = Math.max(0, Math.round(us));
  const secs = Math.floor(t / 1_000_000);
  const frac = String(t % 1_000_000).padStart(6, '0').replace(/0+$/, '');
  return `${secs}.${frac === '' ? '0' : frac}`;
}


export function encodeV2Header(h: CastHeader): string {
  const out: Record<string, unknown> = { version: 2, width: h.cols, height: h.rows };
  if (h.timestamp !== undefined) out.timestamp = h.timestamp;
  if (h.duration !== undefined) out.duration = h.duration;
  if (h.idleTimeLimit !== undefined) out.idle_time_limit = h.idleTimeLimit;
  if (h.command !== undefined) out.command = h.command;
  if (h.title !== undefined) out.title = h.title;
  const env = { ...(h.env ?? {}) };
  // v2 has no term.type: the asciinema CLI reads it from env.TERM.
  if (h.termType !== undefined && env.TERM === undefined) env.TERM = h.termType;
  if (Object.keys(env).length > 0) out.env = env;
  if (h.theme !== undefined) out.theme = h.theme;
  // Not v2 keys, but readers ignore unknown keys; term.version has no v2 home and is dropped.
  if (h.tags !== undefined) out.tags = h.tags;
  for (const [k, v] of Object.entries(h.extra)) if (!(k in out)) out[k] = v;
  return `${JSON.stringify(out)}\n`;
}

/** Stateless apart from the header: v2 times are absolute. */
export class AsciicastV2Encoder {
  header(h: CastHeader): string {
    return encodeV2Header(h);
  }

  event(e: RecordingEvent): string {
    return eventLine(this.time(e.timeUs), e.code, e.data);
  }

  /** The time field of the next event (for lines built from bytes, see utf8EventLine). */
  time(timeUs: number): string {
    return formatV2Time(timeUs);
  }
}

export function encodeAsciicastV2(cast: { header: CastHeader; events: readonly RecordingEvent[] }): string {
  const enc = new AsciicastV2Encoder();
  let out = enc.header(cast.header);
  for (const e of cast.events) out += enc.event(e);
  return out;
}
