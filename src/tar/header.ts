// The tar header block, encoded and decoded in one place. The kubectl cp lister reads archives
// from recorded session bytes and the evidence archive writer and reader produce and read bundles;
// before, each had its own field offsets, number formats and checksum, and they disagreed on
// details. This module knows the format (ustar fields, POSIX prefix, GNU base-256 numbers, the
// checksum; pax records are only read, as every path the bastion writes fits ustar) and nothing
// about policy: which entry types or names are acceptable is the caller's decision.

import { BastionError } from '../errors/index.js';

export const BLOCK = 512;

/** Largest value an 11-digit octal field holds; larger sizes are written base-256. */
const MAX_OCTAL_SIZE = 8 ** 11 - 1;

export class TarFormatError extends BastionError {
  override readonly name = 'TarFormatError';
  constructor(message: string) {
    super('INVALID_ARCHIVE', message);
  }
}

/** Bytes an entry's content takes in the archive: padded to the next block. */
export function paddedSize(size: number): number {
  return Math.ceil(size / BLOCK) * BLOCK;
}

export function isZeroBlock(block: Uint8Array): boolean {
  return block.every((b) => b === 0);
}

/** The header fields the bastion writes and reads. */
export interface TarHeaderFields {
  /** Full path; split into ustar's prefix and name when longer than 100 bytes. */
  name: string;
  /** The one-character typeflag ('0' file, '5' directory, 'L', 'x', ...). */
  typeflag: string;
  size: number;
  mode: number;
  /** Unix seconds. */
  mtime: number;
}

export interface DecodedTarHeader {
  /** Prefix and name joined (POSIX ustar only), UTF-8 decoded with invalid bytes as U+FFFD. */
  name: string;
  typeflag: string;
  size: number;
  /** Undefined when the field is not a number: only readers that care refuse the entry. */
  mode: number | undefined;
  mtime: number | undefined;
  /** `ustar`: POSIX ("ustar\0"), with a prefix field; `gnu`: old GNU ("ustar  "); `v7`: no magic. */
  format: 'ustar' | 'gnu' | 'v7';
}

// ---------------------------------------------------------------------------------------------
// Encoding

function writeString(block: Buffer, offset: number, length: number, value: string, field: string): void {
  const bytes = Buffer.from(value, 'utf8');
  if (bytes.length > length) throw new Error(`tar: ${field} ${JSON.stringify(value)} is longer than ${length} bytes`);
  bytes.copy(block, offset);
}

function writeOctal(block: Buffer, offset: number, length: number, value: number): void {
  // length - 1 digits and a NUL.
  const text = Math.floor(value).toString(8).padStart(length - 1, '0');
  if (text.length > length - 1) throw new Error(`tar: ${value} does not fit ${length - 1} octal digits`);
  block.write(`${text}\0`, offset, length, 'ascii');
}

function writeSize(block: Buffer, size: number): void {
  if (!Number.isSafeInteger(size) || size < 0) throw new Error(`tar: bad size ${size}`);
  if (size <= MAX_OCTAL_SIZE) return writeOctal(block, 124, 12, size);
  // base-256 (what GNU tar and libarchive read): first byte 0x80, then the value big-endian.
  block[124] = 0x80;
  let v = BigInt(size);
  for (let i = 135; i > 124; i--) {
    block[i] = Number(v & 0xffn);
    v >>= 8n;
  }
}

/** Splits a long path into ustar's prefix (155 bytes) and name (100 bytes) at a slash. */
function splitName(path: string): { prefix: string; name: string } {
  if (Buffer.byteLength(path) <= 100) return { prefix: '', name: path };
  for (let i = path.lastIndexOf('/'); i > 0; i = path.lastIndexOf('/', i - 1)) {
    const prefix = path.slice(0, i);
    const name = path.slice(i + 1);
    if (Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(name) <= 100 && name !== '') return { prefix, name };
  }
  throw new Error(`tar: path too long for ustar: ${path}`);
}

/** Sums of the block with the checksum field counted as spaces: POSIX says unsigned, old tars signed. */
function checksums(block: Uint8Array): { unsigned: number; signed: number } {
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const b = i >= 148 && i < 156 ? 0x20 : block[i]!;
    unsigned += b;
    signed += b > 127 ? b - 256 : b;
  }
  return { unsigned, signed };
}

/**
 * One 512-byte POSIX ustar header. uid/gid are 0 and uname/gname empty: extracting as root then
 * gives files to uid/gid 0, never to whatever local account happens to carry a name we wrote.
 */
export function encodeTarHeader(h: TarHeaderFields): Buffer {
  const block = Buffer.alloc(BLOCK);
  const { prefix, name } = splitName(h.name);
  writeString(block, 0, 100, name, 'name');
  writeOctal(block, 100, 8, h.mode & 0o7777);
  writeOctal(block, 108, 8, 0); // uid
  writeOctal(block, 116, 8, 0); // gid
  writeSize(block, h.size);
  writeOctal(block, 136, 12, Math.max(0, Math.floor(h.mtime)));
  block.write(h.typeflag, 156, 1, 'ascii');
  block.write('ustar\0', 257, 6, 'ascii');
  block.write('00', 263, 2, 'ascii');
  writeString(block, 345, 155, prefix, 'prefix');
  block.write(`${checksums(block).unsigned.toString(8).padStart(6, '0')}\0 `, 148, 8, 'ascii');
  return block;
}

// ---------------------------------------------------------------------------------------------
// Decoding

/** Octal (up to the first NUL, spaces around it ignored, empty = 0); undefined when not a number. */
function readOctal(field: Uint8Array): number | undefined {
  const end = field.indexOf(0);
  const text = Buffer.from(field.buffer, field.byteOffset, end < 0 ? field.length : end).toString('latin1').trim();
  if (text === '') return 0;
  return /^[0-7]+$/.test(text) ? parseInt(text, 8) : undefined;
}

/** Octal, or GNU base-256 (high bit of the first byte set); undefined when negative or unsafe. */
function readNumeric(field: Uint8Array): number | undefined {
  if ((field[0]! & 0x80) === 0) return readOctal(field);
  if (field[0]! & 0x40) return undefined; // negative
  let n = field[0]! & 0x3f;
  for (let i = 1; i < field.length; i++) n = n * 256 + field[i]!;
  return Number.isSafeInteger(n) ? n : undefined;
}

/** Bytes up to the first NUL as UTF-8 (invalid bytes as U+FFFD): names, GNU long names. */
export function decodeTarString(bytes: Uint8Array): string {
  const end = bytes.indexOf(0);
  return Buffer.from(bytes.buffer, bytes.byteOffset, end < 0 ? bytes.length : end).toString('utf8');
}

/**
 * Decodes one header block. Throws TarFormatError when the checksum does not match or the size is
 * not a number (what a reader needs to find the next header); other fields are left to the caller.
 */
export function decodeTarHeader(block: Uint8Array): DecodedTarHeader {
  const stored = readOctal(block.subarray(148, 156));
  const sums = checksums(block);
  if (stored === undefined || (stored !== sums.unsigned && stored !== sums.signed)) throw new TarFormatError('tar: header checksum mismatch (the archive is corrupt)');
  const size = readNumeric(block.subarray(124, 136));
  if (size === undefined) throw new TarFormatError('tar: the size field is not a number');
  const magic = Buffer.from(block.buffer, block.byteOffset + 257, 6).toString('latin1');
  const format = magic === 'ustar\0' ? 'ustar' : magic === 'ustar ' ? 'gnu' : 'v7';
  const name = decodeTarString(block.subarray(0, 100));
  // Old GNU uses the prefix bytes for other things.
  const prefix = format === 'ustar' ? decodeTarString(block.subarray(345, 500)) : '';
  return {
    name: prefix ? `${prefix}/${name}` : name,
    typeflag: String.fromCharCode(block[156]!),
    size,
    mode: readNumeric(block.subarray(100, 108)),
    mtime: readNumeric(block.subarray(136, 148)),
    format,
  };
}

/** pax extended header records, `<len> <key>=<value>\n` (len counts the whole record), in order; stops at the first malformed one. */
export function decodePaxRecords(data: Uint8Array): Map<string, string> {
  const buf = Buffer.from(data.buffer, data.byteOffset, data.length);
  const out = new Map<string, string>();
  let pos = 0;
  while (pos < buf.length) {
    const sp = buf.indexOf(0x20, pos);
    if (sp < 0) break;
    const len = Number(buf.subarray(pos, sp).toString('latin1'));
    if (!Number.isInteger(len) || len <= 0 || pos + len > buf.length) break;
    const record = buf.subarray(sp + 1, pos + len - 1); // drop the trailing "\n"
    const eq = record.indexOf(0x3d);
    if (eq > 0) out.set(record.subarray(0, eq).toString('utf8'), record.subarray(eq + 1).toString('utf8'));
    pos += len;
  }
  return out;
}
