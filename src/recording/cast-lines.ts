// The `[time, code, data]` line both versions' encoders (and crash recovery, through them) write,
// so that v2 and v3 escape text the same way. Reading lines back is cast-reader.ts's job.

/** `[time, "code", "data"]` followed by a newline; `time` is already formatted. */
export function eventLine(time: string, code: string, data: string): string {
  // JSON.stringify escapes exactly like serde_json (the asciinema CLI): `"`, `\`, \b \f \n \r \t,
  // other C0 controls as \u00XX (lower-case hex), nothing else; so U+2028/2029, DEL and non-ASCII
  // stay literal UTF-8. Lone surrogates cannot occur in decoded text.
  return `[${time}, ${JSON.stringify(code)}, ${JSON.stringify(data)}]\n`;
}
