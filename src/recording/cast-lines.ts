// Newline-delimited JSON plumbing shared by the v2 and v3 parsers: splitting a cast into lines
// (tolerating the incomplete last line a crash leaves), reading one `[time, code, data]` event, and
// the line shape both encoders write.

export class CastParseError extends Error {
  override readonly name = 'CastParseError';
  constructor(
    message: string,
    /** 1-based line number. */
    readonly line: number,
  ) {
    super(`line ${line}: ${message}`);
  }
}

export interface CastLine {
  text: string;
  /** 1-based. */
  number: number;
  /** False only for a last line with no newline after it. */
  terminated: boolean;
}

/** Splits into lines (`\n`, an optional `\r` before it is dropped). Empty lines are kept. */
export function splitCastLines(text: string): CastLine[] {
  const parts = text.split('\n');
  const last = parts.pop() ?? '';
  const lines: CastLine[] = parts.map((t, i) => ({ text: t.endsWith('\r') ? t.slice(0, -1) : t, number: i + 1, terminated: true }));
  if (last !== '') lines.push({ text: last, number: parts.length + 1, terminated: false });
  return lines;
}

export interface RawEvent {
  /** Seconds as written (absolute in v2, interval in v3). */
  seconds: number;
  code: string;
  data: string;
}

/**
 * Parses one event line. Returns undefined for an unterminated line that does not parse (a write
 * cut short by a crash); throws CastParseError for a complete line that is not an event.
 */
export function parseEventLine(line: CastLine): RawEvent | undefined {
  let value: unknown;
  try {
    value = JSON.parse(line.text);
  } catch {
    if (!line.terminated) return undefined;
    throw new CastParseError('event is not valid JSON', line.number);
  }
  if (!Array.isArray(value) || value.length < 3) {
    if (!line.terminated) return undefined;
    throw new CastParseError('event is not a [time, code, data] array', line.number);
  }
  const [seconds, code, data] = value as unknown[];
  if (typeof seconds !== 'number' || !Number.isFinite(seconds) || seconds < 0) throw new CastParseError('event time is not a non-negative number', line.number);
  if (typeof code !== 'string' || code === '') throw new CastParseError('event code is not a non-empty string', line.number);
  if (typeof data !== 'string') throw new CastParseError('event data is not a string', line.number);
  return { seconds, code, data };
}

/** Float seconds to integer microseconds (what the asciinema CLI keeps too). */
export function secondsToUs(seconds: number): number {
  return Math.round(seconds * 1_000_000);
}

/** `[time, "code", "data"]` followed by a newline; `time` is already formatted. */
export function eventLine(time: string, code: string, data: string): string {
  // JSON.stringify escapes exactly like serde_json (the asciinema CLI): `"`, `\`, \b \f \n \r \t,
  // other C0 controls as \u00XX (lower-case hex), nothing else; so U+2028/2029, DEL and non-ASCII
  // stay literal UTF-8. Lone surrogates cannot occur in decoded text.
  return `[${time}, ${JSON.stringify(code)}, ${JSON.stringify(data)}]\n`;
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function isStringMap(value: unknown): value is Record<string, string> {
  return isPlainObject(value) && Object.values(value).every((v) => typeof v === 'string');
}

export function isDimension(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value > 0 && value <= 0xffff;
}
