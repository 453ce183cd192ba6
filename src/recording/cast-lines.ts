// The `[time, code, data]` line both versions' encoders (and crash recovery, through them) write,
// so that v2 and v3 escape text the same way. Reading lines back is cast-reader.ts's job.

/** `[time, "code", "data"]` followed by a newline; `time` is already formatted. */
export function eventLine(time: string, code: string, data: string): string {
  // JSON.stringify escapes exactly like serde_json (the asciinema CLI): `"`, `\`, \b \f \n \r \t,
  // other C0 controls as \u00XX (lower-case hex), nothing else; so U+2028/2029, DEL and non-ASCII
  // stay literal UTF-8. Lone surrogates cannot occur in decoded text.
  return `[${time}, ${JSON.stringify(code)}, ${JSON.stringify(data)}]\n`;
}

/** Bytes escaped per JSON.stringify call: small enough that the strings stay in V8's young heap. */
const ESCAPE_PIECE = 16 * 1024;
/** A piece of NUL bytes escaped (`\u0000` each): output of /dev/zero costs a compare, not an escape. */
const NUL_PIECE = Buffer.alloc(ESCAPE_PIECE);
const NUL_ESCAPED = Buffer.from(JSON.stringify(NUL_PIECE.toString('latin1')).slice(1, -1), 'latin1');

/**
 * The same line for text given as bytes that are valid UTF-8 (the caller checks; given as parts), without decoding
 * them: the characters JSON escapes (`"`, `\\`, C0 controls) are all ASCII and never occur inside a
 * multi-byte UTF-8 sequence, so escaping the bytes as Latin-1 characters and writing the result
 * back as Latin-1 gives exactly the bytes eventLine would write for the decoded text. Latin-1 is
 * V8's one-byte string form: no per-character decoding or re-encoding. The line comes as parts (to
 * be written in order): the bytes are escaped ESCAPE_PIECE at a time, since one string per
 * megabyte would go to V8's large-object space and cost page faults and GC (measured with
 * bench/cast-micro.ts); escaping is per byte, so a piece may end inside a character.
 */
export function utf8EventLine(time: string, code: string, utf8: readonly Buffer[]): Buffer[] {
  const out = [Buffer.from(`[${time}, ${JSON.stringify(code)}, "`, 'latin1')];
  for (const part of utf8) escapeInto(out, part);
  out.push(Buffer.from('"]\n', 'latin1'));
  return out;
}

function escapeInto(out: Buffer[], utf8: Buffer): void {
  for (let at = 0; at < utf8.length; at += ESCAPE_PIECE) {
    const piece = utf8.subarray(at, at + ESCAPE_PIECE);
    if (piece[0] === 0 && piece.equals(NUL_PIECE.subarray(0, piece.length))) {
      out.push(NUL_ESCAPED.subarray(0, piece.length * 6));
      continue;
    }
    const escaped = Buffer.from(JSON.stringify(piece.toString('latin1')), 'latin1');
    out.push(escaped.subarray(1, escaped.length - 1));
  }
}
