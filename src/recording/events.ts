// The neutral event model shared by the recorder, the asciicast encoders/parsers and the
// converter. It knows nothing about asciicast versions: times are integer microseconds since the
// start of the recording (absolute, never intervals), data is always a string.

/** The recording formats the bastion writes. */
export type { CastFormat } from '../model/vocabulary.js';

/**
 * Event codes. `o` output (stdout and stderr), `i` input (stdin), `r` resize ("COLSxROWS"),
 * `m` marker (label), `x` exit (status as a decimal string; asciicast v3 only).
 */
export type KnownEventCode = 'o' | 'i' | 'r' | 'm' | 'x';
/** Parsers pass unknown codes through (the specs ask readers to), so the model keeps them. */
export type EventCode = KnownEventCode | (string & {});

export interface RecordingEvent {
  /** Microseconds since the start of the recording (absolute, integer, non-decreasing). */
  timeUs: number;
  code: EventCode;
  data: string;
}

/**
 * The header, version-neutral. v2 `width`/`height` and v3 `term.cols`/`term.rows` both map to
 * `cols`/`rows`; keys a format does not define are kept in `extra` (in order) so a conversion
 * does not lose them (the bastion's own key, `kube_bastion`, travels there).
 */
export interface CastHeader {
  cols: number;
  rows: number;
  /** Unix seconds of the start of the recording. */
  timestamp?: number;
  /** v2 only (v3 has no duration). */
  duration?: number;
  idleTimeLimit?: number;
  command?: string;
  title?: string;
  env?: Record<string, string>;
  /** v3 `term.type` (v2 keeps it in env.TERM). */
  termType?: string;
  /** v3 `term.version`. */
  termVersion?: string;
  /** v2 `theme` / v3 `term.theme`, passed through untouched. */
  theme?: unknown;
  /** v3 `tags`. */
  tags?: string[];
  /** Every other key, in file order. */
  extra: Record<string, unknown>;
}

export interface ParsedCast {
  version: 2 | 3;
  header: CastHeader;
  events: RecordingEvent[];
  /**
   * True when the file ended in an incomplete line (no final newline and not valid JSON): what a
   * crash in the middle of a write leaves. The incomplete line is ignored.
   */
  truncatedTail: boolean;
}

/** The key the bastion adds to every cast header (players ignore unknown header keys). */
export const HEADER_EXTRA_KEY = 'kube_bastion';

/** `r` event data: "COLSxROWS". */
export function resizeData(cols: number, rows: number): string {
  return `${cols}x${rows}`;
}

/** Parses `r` event data; undefined when it is not "COLSxROWS". */
export function parseResizeData(data: string): { cols: number; rows: number } | undefined {
  const m = /^(\d{1,5})x(\d{1,5})$/.exec(data);
  if (!m) return undefined;
  return { cols: Number(m[1]), rows: Number(m[2]) };
}

/**
 * Replaces lone UTF-16 surrogates by U+FFFD. Decoded output never has them, but marker labels come
 * from callers, and strict JSON readers (serde_json, i.e. the asciinema 3 CLI) reject an escaped
 * lone surrogate.
 */
export function wellFormed(text: string): string {
  return /[\ud800-\udfff]/.test(text) ? Buffer.from(text, 'utf8').toString('utf8') : text;
}

/** The concatenated data of every `o` event: what the terminal was sent. */
export function outputText(events: readonly RecordingEvent[]): string {
  let out = '';
  for (const e of events) if (e.code === 'o') out += e.data;
  return out;
}

/** Shell-style quoting of an argv for the header's `command` (display only). */
export function shellJoin(argv: readonly string[]): string {
  return argv.map((arg) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`)).join(' ');
}
