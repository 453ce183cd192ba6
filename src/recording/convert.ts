// v2 <-> v3 re-encoding of a parsed cast (for the export API). Event data and order are kept;
// times go through the neutral microsecond model, so v2 -> v3 rounds to the millisecond (v3's
// precision) and v3 -> v2 is exact. The exit status is the one event the formats disagree on:
//   v3 `[t, "x", "N"]`  ->  v2 `[t, "m", "exit status N"]` (v2 has no exit event), and back:
//   a v2 LAST event `m "exit status N"` (what the recorder writes in v2) -> v3 `x "N"`.
// Other codes, known or not, are copied as they are.
import { AsciicastV2Encoder } from './asciicast-v2.js';
import { AsciicastV3Encoder } from './asciicast-v3.js';
import { parseCast } from './cast-reader.js';
import type { CastFormat, CastHeader, RecordingEvent } from './events.js';

/** The v2 marker label that stands for an exit status. */
export function exitMarkerLabel(status: string | number): string {
  return `exit status ${status}`;
}

const EXIT_MARKER = /^exit status (\d+)$/;

/** Maps exit events between the formats (see the file comment). */
export function eventsFor(events: readonly RecordingEvent[], to: CastFormat): RecordingEvent[] {
  if (to === 'v2') return events.map((e) => (e.code === 'x' ? { timeUs: e.timeUs, code: 'm', data: exitMarkerLabel(e.data) } : { ...e }));
  const out = events.map((e) => ({ ...e }));
  const last = out[out.length - 1];
  const m = last && last.code === 'm' ? EXIT_MARKER.exec(last.data) : null;
  if (last && m) out[out.length - 1] = { timeUs: last.timeUs, code: 'x', data: m[1]! };
  return out;
}

export function encodeCast(cast: { header: CastHeader; events: readonly RecordingEvent[] }, format: CastFormat): string {
  const enc = format === 'v2' ? new AsciicastV2Encoder() : new AsciicastV3Encoder();
  // (v3 has no `duration`: its encoder leaves it out.)
  let out = enc.header(cast.header);
  for (const e of eventsFor(cast.events, format)) out += enc.event(e);
  return out;
}

/** Re-encodes a cast (either version) as `to`. Throws CastParseError on a malformed input. */
export function convertCast(text: string, to: CastFormat): string {
  return encodeCast(parseCast(text), to);
}
