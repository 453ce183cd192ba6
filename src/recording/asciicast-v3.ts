// asciicast v3: header `{"version":3,"term":{"cols":C,"rows":R,...},...}`, then one
// `[interval, code, data]` line per event, `interval` = seconds since the PREVIOUS event, with
// millisecond precision written as `S.mmm` (as the asciinema 3 CLI does). Rounding does not drift:
// the encoder rounds each event's absolute time to the millisecond and writes the difference to
// the previous rounded time, which is the spec's "carry the rounding error forward". Lines starting
// with `#` are comments. `x` = exit, data is the exit status as a string.
import { CastParseError, eventLine, isDimension, isPlainObject, isStringMap, parseEventLine, secondsToUs, splitCastLines } from './cast-lines.js';
import type { CastHeader, ParsedCast, RecordingEvent } from './events.js';

/** Milliseconds to `S.mmm`. */
export function formatV3Interval(ms: number): string {
  const t = Math.max(0, Math.round(ms));
  return `${Math.floor(t / 1000)}.${String(t % 1000).padStart(3, '0')}`;
}

const V3_KEYS = new Set(['version', 'term', 'timestamp', 'idle_time_limit', 'command', 'title', 'env', 'tags']);

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
    const ms = Math.max(this.prevMs, Math.round(e.timeUs / 1000));
    const interval = ms - this.prevMs;
    this.prevMs = ms;
    return eventLine(formatV3Interval(interval), e.code, e.data);
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

export function parseV3Header(text: string): CastHeader {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new CastParseError('header is not valid JSON', 1);
  }
  if (!isPlainObject(value) || value.version !== 3) throw new CastParseError('not an asciicast v3 header (version must be 3)', 1);
  const term = value.term;
  if (!isPlainObject(term) || !isDimension(term.cols) || !isDimension(term.rows)) throw new CastParseError('header needs term.cols and term.rows', 1);
  const h: CastHeader = { cols: term.cols, rows: term.rows, extra: {} };
  // Unknown keys inside `term` have no neutral home and are dropped.
  if (typeof term.type === 'string') h.termType = term.type;
  if (typeof term.version === 'string') h.termVersion = term.version;
  if (term.theme !== undefined && term.theme !== null) h.theme = term.theme;
  if (typeof value.timestamp === 'number') h.timestamp = value.timestamp;
  if (typeof value.idle_time_limit === 'number') h.idleTimeLimit = value.idle_time_limit;
  if (typeof value.command === 'string') h.command = value.command;
  if (typeof value.title === 'string') h.title = value.title;
  if (isStringMap(value.env)) h.env = value.env;
  if (Array.isArray(value.tags) && value.tags.every((t) => typeof t === 'string')) h.tags = value.tags as string[];
  for (const [k, v] of Object.entries(value)) if (!V3_KEYS.has(k)) h.extra[k] = v;
  return h;
}

/**
 * Parses a whole v3 cast into absolute times. Comments and empty lines are skipped, unknown codes
 * passed through, an incomplete last line (crash) ignored and reported in `truncatedTail`.
 */
export function parseAsciicastV3(text: string): ParsedCast {
  const lines = splitCastLines(text);
  const first = lines[0];
  if (!first || !first.terminated) throw new CastParseError('no complete header line', 1);
  const header = parseV3Header(first.text);
  const events: RecordingEvent[] = [];
  let truncatedTail = false;
  let timeUs = 0;
  for (const line of lines.slice(1)) {
    if (line.text === '' || line.text.startsWith('#')) continue;
    const raw = parseEventLine(line);
    if (!raw) {
      truncatedTail = true;
      continue;
    }
    timeUs += secondsToUs(raw.seconds);
    events.push({ timeUs, code: raw.code, data: raw.data });
  }
  return { version: 3, header, events, truncatedTail };
}
