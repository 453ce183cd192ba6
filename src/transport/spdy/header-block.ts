// The uncompressed SPDY/3 header block: u32 pair count, then per pair u32 name length, name,
// u32 value length, value. Names are lower-case; several values of one name travel as one value
// joined with NUL. Bytes are kept as latin1 so any value round-trips unchanged.
import { BastionError, ErrorCode } from '../../errors/index.js';

/** Decoded headers: lower-case name → values. Null-prototype, so no name can reach Object.prototype. */
export type HeaderMap = Readonly<Record<string, readonly string[]>>;

/** Headers to send: names are lower-cased; an array sends several values. */
export type HeaderInput = Readonly<Record<string, string | readonly string[]>>;

/** Visible ASCII without upper-case letters: what the SPDY/3 reader (spdystream) accepts. */
function isValidName(name: string): boolean {
  if (name.length === 0) return false;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c < 0x21 || c > 0x7e || (c >= 0x41 && c <= 0x5a)) return false;
  }
  return true;
}

export function emptyHeaders(): Record<string, string[]> {
  return Object.create(null) as Record<string, string[]>;
}

export function encodeHeaderBlock(headers: HeaderInput): Buffer {
  const merged = new Map<string, string[]>();
  for (const [rawName, value] of Object.entries(headers)) {
    const name = rawName.toLowerCase();
    if (!isValidName(name)) throw new TypeError(`invalid SPDY header name ${JSON.stringify(rawName)}`);
    const values = typeof value === 'string' ? [value] : [...value];
    for (const v of values) {
      if (v.includes('\0')) throw new TypeError(`SPDY header ${name} has a value containing NUL`);
    }
    merged.set(name, [...(merged.get(name) ?? []), ...values]);
  }
  const parts: Buffer[] = [u32(merged.size)];
  for (const [name, values] of merged) {
    if (values.length > 1 && values.some((v) => v === '')) throw new TypeError(`SPDY header ${name} mixes empty and non-empty values`);
    const n = Buffer.from(name, 'latin1');
    const v = Buffer.from(values.join('\0'), 'latin1');
    parts.push(u32(n.length), n, u32(v.length), v);
  }
  return Buffer.concat(parts);
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n, 0);
  return b;
}

function malformed(message: string): BastionError {
  return new BastionError(ErrorCode.SPDY_PROTOCOL_ERROR, `bad SPDY header block: ${message}`);
}

/** Parses one whole block; the block must end exactly after its last pair. */
export function parseHeaderBlock(block: Buffer, maxPairs: number): HeaderMap {
  let offset = 0;
  const readU32 = (what: string): number => {
    if (offset + 4 > block.length) throw malformed(`truncated ${what}`);
    const n = block.readUInt32BE(offset);
    offset += 4;
    return n;
  };
  const readBytes = (length: number, what: string): Buffer => {
    if (length > block.length - offset) throw malformed(`truncated ${what}`);
    const bytes = block.subarray(offset, offset + length);
    offset += length;
    return bytes;
  };

  const count = readU32('pair count');
  if (count > maxPairs) {
    throw new BastionError(ErrorCode.SPDY_HEADER_BLOCK_TOO_LARGE, `header block has ${count} pairs, limit ${maxPairs}`, {
      count,
      limit: maxPairs,
    });
  }
  const headers = emptyHeaders();
  for (let i = 0; i < count; i++) {
    const name = readBytes(readU32('name length'), 'name').toString('latin1');
    if (!isValidName(name)) throw malformed(`invalid or non-lower-case name ${JSON.stringify(name)}`);
    if (name in headers) throw malformed(`duplicate name ${name}`);
    const value = readBytes(readU32('value length'), 'value').toString('latin1');
    const values = value === '' ? [''] : value.split('\0');
    if (values.length > 1 && values.some((v) => v === '')) throw malformed(`empty value among NUL-separated values of ${name}`);
    headers[name] = values;
  }
  if (offset !== block.length) throw malformed(`${block.length - offset} trailing bytes`);
  return headers;
}
