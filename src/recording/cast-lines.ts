// The `[time, code, data]` line both versions' encoders (and crash recovery, through them) write,
// so that v2 and v3 escape text the same way. Reading lines back is cast-reader.ts's job.

/** `[time, "code", "data"]` followed by a newline; `time` is already formatted. */
export function eventLine(time: string, code: string, data: string): string {
  // JSON.stringify escapes exactly like serde_json (the asciinema CLI): `"`, `\`, \b \f \n \r \t,
  // other C0 controls as \u00XX (lower-case hex), nothing else; so U+2028/2029, DEL and non-ASCII
  // stay literal UTF-8. Lone surrogates cannot occur in decoded text.
  return `[${time}, ${JSON.stringify(code)}, ${JSON.stringify(data)}]\n`;
}

/**
 * The same line for text given as bytes that are valid UTF-8 (the caller checks), without decoding
 * them: the characters JSON escapes (`"`, `\\`, C0 controls) are all ASCII and never occur inside a
 * multi-byte UTF-8 sequence, so escaping the bytes as Latin-1 characters and writing the result
 * back as Latin-1 gives exactly the bytes eventLine would write for the decoded text. Latin-1 is
 * V8's one-byte string form: no per-character decoding or re-encoding.
 */
export function utf8EventLine(time: string, code: string, utf8: Buffer): Buffer {
  return Buffer.from(`[${time}, ${JSON.stringify(code)}, ${JSON.stringify(utf8.toString('latin1'))}]\n`, 'latin1');
}
