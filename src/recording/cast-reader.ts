// The one asciicast reader. Conversion, crash recovery, evidence export and the sessions API all
// read casts; they used to sniff the version, split lines and parse events each their own way.
// Here: the version from the header line, the header of either version mapped to the neutral
// CastHeader, and the events as neutral absolute microseconds (v2 times are absolute, v3 times are
// intervals; v3 `#` lines are comments). An incomplete last line (a write cut short by a crash) is
// ignored and reported; any other malformed line is a CastParseError. The writers are
// asciicast-v2.ts and asciicast-v3.ts.
import { BastionError } from '../errors/index.js';
import { open } from 'node:fs/promises';
import type { CastFormat, CastHeader, ParsedCast, RecordingEvent } from './events.js';

export class CastParseError extends BastionError {
  override readonly name = 'CastParseError';
  constructor(
    message: string,
    /** 1-based line number. */
    readonly line: number,
  ) {
    super('INVALID_RECORDING', `line ${line}: ${message}`);
  }
}

/** One event line as written: `seconds` is absolute in v2, an interval in v3. */
export interface CastEventLine {
  seconds: number;
  code: string;
  data: string;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isStringMap(value: unknown): value is Record<string, string> {
  return isPlainObject(value) && Object.values(value).every((v) => typeof v === 'string');
}

function isDimension(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value > 0 && value <= 0xffff;
}

function isStringList(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((t) => typeof t === 'string');
}

/** Float seconds to integer microseconds (what the asciinema CLI keeps too). */
export function secondsToUs(seconds: number): number {
  return Math.round(seconds * 1_000_000);
}

function firstLine(text: string): string {
  const nl = text.indexOf('\n');
  return nl < 0 ? text : text.slice(0, nl);
}

function headerObject(line: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    throw new CastParseError('header is not valid JSON', 1);
  }
  if (!isPlainObject(value)) throw new CastParseError('header is not a JSON object', 1);
  return value;
}

function formatOf(header: Record<string, unknown>): CastFormat {
  if (header.version === 2) return 'v2';
  if (header.version === 3) return 'v3';
  throw new CastParseError(`unsupported asciicast version ${JSON.stringify(header.version)}`, 1);
}

/** The asciicast version a cast declares on its first line (`text`: the cast, or that line). */
export function castFormat(text: string): CastFormat {
  return formatOf(headerObject(firstLine(text)));
}

/** The asciicast version of a cast file, from its first line (read up to 64 KiB). */
export async function castFileFormat(path: string): Promise<CastFormat> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(64 * 1024);
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    return castFormat(buf.subarray(0, bytesRead).toString('utf8'));
  } finally {
    await fh.close();
  }
}

const V2_KEYS = new Set(['version', 'width', 'height', 'timestamp', 'duration', 'idle_time_limit', 'command', 'title', 'env', 'theme', 'tags']);
const V3_KEYS = new Set(['version', 'term', 'timestamp', 'idle_time_limit', 'command', 'title', 'env', 'tags']);

/** Keys both versions write the same way. */
function commonKeys(value: Record<string, unknown>, h: CastHeader): void {
  if (typeof value.timestamp === 'number') h.timestamp = value.timestamp;
  if (typeof value.idle_time_limit === 'number') h.idleTimeLimit = value.idle_time_limit;
  if (typeof value.command === 'string') h.command = value.command;
  if (typeof value.title === 'string') h.title = value.title;
  if (isStringList(value.tags)) h.tags = value.tags;
}

function v2Header(value: Record<string, unknown>): CastHeader {
  if (!isDimension(value.width) || !isDimension(value.height)) throw new CastParseError('header needs integer width and height', 1);
  const h: CastHeader = { cols: value.width, rows: value.height, extra: {} };
  commonKeys(value, h);
  if (typeof value.duration === 'number') h.duration = value.duration;
  if (isStringMap(value.env)) {
    h.env = value.env;
    // v2 has no term.type: the asciinema CLI reads it from env.TERM.
    if (value.env.TERM !== undefined) h.termType = value.env.TERM;
  }
  if (value.theme !== undefined && value.theme !== null) h.theme = value.theme;
  for (const [k, v] of Object.entries(value)) if (!V2_KEYS.has(k)) h.extra[k] = v;
  return h;
}

function v3Header(value: Record<string, unknown>): CastHeader {
  const term = value.term;
  if (!isPlainObject(term) || !isDimension(term.cols) || !isDimension(term.rows)) throw new CastParseError('header needs term.cols and term.rows', 1);
  const h: CastHeader = { cols: term.cols, rows: term.rows, extra: {} };
  // Unknown keys inside `term` have no neutral home and are dropped.
  if (typeof term.type === 'string') h.termType = term.type;
  if (typeof term.version === 'string') h.termVersion = term.version;
  if (term.theme !== undefined && term.theme !== null) h.theme = term.theme;
  commonKeys(value, h);
  if (isStringMap(value.env)) h.env = value.env;
  for (const [k, v] of Object.entries(value)) if (!V3_KEYS.has(k)) h.extra[k] = v;
  return h;
}

/**
 * An event line's `[time, code, data]`, or why it is not one. `torn`: it is not even a JSON array
 * of three, which an unterminated last line may be after a crash.
 */
function readEventLine(text: string): CastEventLine | { problem: string; torn: boolean } {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { problem: 'event is not valid JSON', torn: true };
  }
  if (!Array.isArray(value) || value.length < 3) return { problem: 'event is not a [time, code, data] array', torn: true };
  const [seconds, code, data] = value as unknown[];
  if (typeof seconds !== 'number' || !Number.isFinite(seconds) || seconds < 0) return { problem: 'event time is not a non-negative number', torn: false };
  if (typeof code !== 'string' || code === '') return { problem: 'event code is not a non-empty string', torn: false };
  if (typeof data !== 'string') return { problem: 'event data is not a string', torn: false };
  return { seconds, code, data };
}

/** The event one line holds; undefined for anything else (the header, a comment, a torn write). */
export function castEventOf(line: string): CastEventLine | undefined {
  const e = readEventLine(line);
  return 'problem' in e ? undefined : e;
}

/**
 * Parses a whole cast of either version (or only `expected`) into the neutral model. Empty lines
 * are skipped, unknown event codes passed through.
 */
export function parseCast(text: string, expected?: CastFormat): ParsedCast {
  const nl = text.indexOf('\n');
  if (nl < 0) throw new CastParseError('no complete header line', 1);
  const value = headerObject(text.slice(0, nl));
  if (expected !== undefined && value.version !== Number(expected.slice(1))) {
    throw new CastParseError(`not an asciicast ${expected} header (version must be ${expected.slice(1)})`, 1);
  }
  const format = formatOf(value);
  const header = format === 'v2' ? v2Header(value) : v3Header(value);
  const events: RecordingEvent[] = [];
  let truncatedTail = false;
  let timeUs = 0;
  let number = 1;
  for (let start = nl + 1; start < text.length; ) {
    number += 1;
    const end = text.indexOf('\n', start);
    const terminated = end >= 0;
    let line = text.slice(start, terminated ? end : text.length);
    start = terminated ? end + 1 : text.length;
    if (terminated && line.endsWith('\r')) line = line.slice(0, -1);
    if (line === '' || (format === 'v3' && line.startsWith('#'))) continue;
    const e = readEventLine(line);
    if ('problem' in e) {
      if (!terminated && e.torn) {
        truncatedTail = true;
        continue;
      }
      throw new CastParseError(e.problem, number);
    }
    // v2 times are absolute, v3 times intervals since the previous event.
    timeUs = format === 'v2' ? secondsToUs(e.seconds) : timeUs + secondsToUs(e.seconds);
    events.push({ timeUs, code: e.code, data: e.data });
  }
  return { version: format === 'v2' ? 2 : 3, header, events, truncatedTail };
}
