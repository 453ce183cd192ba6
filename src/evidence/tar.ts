// A small POSIX ustar writer and reader: just what evidence archives need (regular files and
// directories), so no dependency is pulled in. Sizes at or above 8 GiB use the base-256 size field
// GNU tar and libarchive read. The reader refuses anything else (links, devices, pax and GNU long
// name records) and checks every header's checksum.
import { Readable } from 'node:stream';

export const BLOCK = 512;
/** Largest size the 11-digit octal field holds; larger sizes are written base-256. */
const MAX_OCTAL_SIZE = 8 ** 11 - 1;

export interface TarEntryHeader {
  /** Path inside the archive, `/`-separated, without a trailing slash for directories. */
  name: string;
  type: 'file' | 'directory';
  size: number;
  /** Permission bits. */
  mode: number;
  mtime: Date;
}

/** One entry to write: a directory, or a file whose exact `size` bytes `body` yields. */
export type TarWriteEntry =
  | { type: 'directory'; name: string; mode?: number; mtime?: Date }
  | { type: 'file'; name: string; size: number; mode?: number; mtime?: Date; body: () => AsyncIterable<Uint8Array> | Iterable<Uint8Array> };

/** Bytes the archive of these entries takes, before writing it (for Content-Length and progress). */
export function tarSize(entries: ReadonlyArray<{ type: 'file' | 'directory'; size?: number }>): number {
  let total = 2 * BLOCK;
  for (const e of entries) total += BLOCK + (e.type === 'file' ? padded(e.size ?? 0) : 0);
  return total;
}

function padded(size: number): number {
  return Math.ceil(size / BLOCK) * BLOCK;
}

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
  // base-256: first byte 0x80, then the value big-endian in the remaining 11 bytes.
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

function checkName(name: string): void {
  if (name === '' || name.startsWith('/') || name.split('/').some((p) => p === '..' || p === '.' || p === '') || name.includes('\0')) {
    throw new Error(`tar: unsafe entry name ${JSON.stringify(name)}`);
  }
}

/** One 512-byte ustar header. */
export function tarHeader(entry: { name: string; type: 'file' | 'directory'; size: number; mode: number; mtime: Date }): Buffer {
  checkName(entry.name);
  const block = Buffer.alloc(BLOCK);
  const { prefix, name } = splitName(entry.type === 'directory' ? `${entry.name}/` : entry.name);
  writeString(block, 0, 100, name, 'name');
  writeOctal(block, 100, 8, entry.mode & 0o7777);
  writeOctal(block, 108, 8, 0); // uid
  writeOctal(block, 116, 8, 0); // gid
  writeSize(block, entry.type === 'file' ? entry.size : 0);
  writeOctal(block, 136, 12, Math.max(0, Math.floor(entry.mtime.getTime() / 1000)));
  block.write('        ', 148, 8, 'ascii'); // checksum placeholder: spaces
  block.write(entry.type === 'directory' ? '5' : '0', 156, 1, 'ascii');
  block.write('ustar\0', 257, 6, 'ascii');
  block.write('00', 263, 2, 'ascii');
  // uname/gname stay empty: extracting as root then gives files to uid/gid 0, never to whatever
  // local account happens to carry a name we wrote.
  writeString(block, 345, 155, prefix, 'prefix');
  let sum = 0;
  for (const b of block) sum += b;
  block.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'ascii');
  return block;
}

/**
 * The archive as a stream of chunks. A file body that yields more or fewer bytes than its declared
 * size fails the stream (the archive would be corrupt otherwise).
 */
export async function* tarChunks(entries: Iterable<TarWriteEntry> | AsyncIterable<TarWriteEntry>): AsyncGenerator<Buffer> {
  for await (const e of entries) {
    const mtime = e.mtime ?? new Date(0);
    if (e.type === 'directory') {
      yield tarHeader({ name: e.name, type: 'directory', size: 0, mode: e.mode ?? 0o755, mtime });
      continue;
    }
    yield tarHeader({ name: e.name, type: 'file', size: e.size, mode: e.mode ?? 0o644, mtime });
    let written = 0;
    for await (const chunk of e.body()) {
      written += chunk.length;
      if (written > e.size) throw new Error(`tar: ${e.name} yielded more than its declared ${e.size} bytes`);
      yield Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length);
    }
    if (written !== e.size) throw new Error(`tar: ${e.name} yielded ${written} bytes, declared ${e.size}`);
    const pad = padded(e.size) - e.size;
    if (pad > 0) yield Buffer.alloc(pad);
  }
  yield Buffer.alloc(2 * BLOCK);
}

export function tarStream(entries: Iterable<TarWriteEntry> | AsyncIterable<TarWriteEntry>): Readable {
  return Readable.from(tarChunks(entries), { objectMode: false });
}

// ---------------------------------------------------------------------------------------------
// Reader

export class TarFormatError extends Error {
  override readonly name = 'TarFormatError';
}

function readString(block: Buffer, offset: number, length: number): string {
  const end = block.indexOf(0, offset);
  return block.toString('utf8', offset, end === -1 || end > offset + length ? offset + length : end);
}

function readNumber(block: Buffer, offset: number, length: number, field: string): number {
  if ((block[offset]! & 0x80) !== 0) {
    if (block[offset] !== 0x80) throw new TarFormatError(`tar: negative or oversized base-256 ${field}`);
    let v = 0n;
    for (let i = offset + 1; i < offset + length; i++) v = (v << 8n) | BigInt(block[i]!);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new TarFormatError(`tar: ${field} too large`);
    return Number(v);
  }
  const text = block.toString('ascii', offset, offset + length).replace(/[\0 ]+$/, '').replace(/^ +/, '');
  if (text === '') return 0;
  if (!/^[0-7]+$/.test(text)) throw new TarFormatError(`tar: ${field} is not an octal number: ${JSON.stringify(text)}`);
  return parseInt(text, 8);
}

function parseHeader(block: Buffer): TarEntryHeader {
  const stored = readNumber(block, 148, 8, 'checksum');
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : block[i]!;
  if (sum !== stored) throw new TarFormatError('tar: header checksum mismatch (the archive is corrupt)');
  const magic = block.toString('ascii', 257, 263);
  if (magic !== 'ustar\0' && magic !== 'ustar ') throw new TarFormatError('tar: not a ustar archive');
  const flag = String.fromCharCode(block[156]!);
  const prefix = magic === 'ustar\0' ? readString(block, 345, 155) : '';
  let name = readString(block, 0, 100);
  if (prefix) name = `${prefix}/${name}`;
  let type: TarEntryHeader['type'];
  if (flag === '0' || flag === '\0') type = 'file';
  else if (flag === '5') type = 'directory';
  else throw new TarFormatError(`tar: entry ${JSON.stringify(name)} has unsupported type ${JSON.stringify(flag)} (only files and directories)`);
  if (type === 'directory' || name.endsWith('/')) {
    type = 'directory';
    name = name.replace(/\/+$/, '');
  }
  if (name === '' || name.startsWith('/') || name.split('/').some((p) => p === '..' || p === '' || p === '.')) {
    throw new TarFormatError(`tar: unsafe entry name ${JSON.stringify(name)}`);
  }
  return {
    name,
    type,
    size: type === 'file' ? readNumber(block, 124, 12, 'size') : 0,
    mode: readNumber(block, 100, 8, 'mode'),
    mtime: new Date(readNumber(block, 136, 12, 'mtime') * 1000),
  };
}

export interface TarVisitor {
  directory?(header: TarEntryHeader): void | Promise<void>;
  /** Called once per file; the returned sink gets the file's bytes in order, then end(). */
  file(header: TarEntryHeader): TarFileSink | Promise<TarFileSink>;
}

export interface TarFileSink {
  write(chunk: Buffer): void | Promise<void>;
  end(): void | Promise<void>;
}

/**
 * Reads an archive from a stream of chunks, calling the visitor for every entry as its bytes
 * arrive (nothing is buffered beyond one header). Fails on a bad header, an unsupported entry, or
 * an archive that ends before its two end-of-archive blocks.
 */
export async function readTar(source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, visitor: TarVisitor): Promise<void> {
  let pending: Buffer = Buffer.alloc(0);
  /** What the next bytes are. */
  let state: { kind: 'header' } | { kind: 'body'; sink: TarFileSink; left: number; pad: number } | { kind: 'pad'; left: number } | { kind: 'done' } = {
    kind: 'header',
  };
  let zeroBlocks = 0;
  for await (const raw of source) {
    let chunk: Buffer = Buffer.isBuffer(raw) ? raw : Buffer.from(raw.buffer, raw.byteOffset, raw.length);
    while (chunk.length > 0) {
      if (state.kind === 'done') {
        // Anything after the end blocks must be zero padding (tar pads to a record size).
        if (chunk.some((b) => b !== 0)) throw new TarFormatError('tar: data after the end of the archive');
        chunk = Buffer.alloc(0);
        break;
      }
      if (state.kind === 'body') {
        const take = Math.min(state.left, chunk.length);
        if (take > 0) await state.sink.write(chunk.subarray(0, take));
        chunk = chunk.subarray(take);
        state.left -= take;
        if (state.left === 0) {
          await state.sink.end();
          state = state.pad > 0 ? { kind: 'pad', left: state.pad } : { kind: 'header' };
        }
        continue;
      }
      if (state.kind === 'pad') {
        const take = Math.min(state.left, chunk.length);
        chunk = chunk.subarray(take);
        state.left -= take;
        if (state.left === 0) state = { kind: 'header' };
        continue;
      }
      // header
      const need = BLOCK - pending.length;
      pending = Buffer.concat([pending, chunk.subarray(0, need)]);
      chunk = chunk.subarray(need);
      if (pending.length < BLOCK) break;
      const block = pending;
      pending = Buffer.alloc(0);
      if (block.every((b) => b === 0)) {
        zeroBlocks++;
        if (zeroBlocks === 2) state = { kind: 'done' };
        continue;
      }
      if (zeroBlocks > 0) throw new TarFormatError('tar: a lone zero block inside the archive');
      const header = parseHeader(block);
      if (header.type === 'directory') {
        await visitor.directory?.(header);
        continue;
      }
      const sink = await visitor.file(header);
      if (header.size === 0) {
        await sink.end();
        continue;
      }
      state = { kind: 'body', sink, left: header.size, pad: padded(header.size) - header.size };
    }
  }
  if (state.kind !== 'done') throw new TarFormatError('tar: the archive is truncated (no end-of-archive blocks)');
}

/** Every entry of an in-memory archive with its contents (tests, small archives). */
export async function listTar(archive: Uint8Array): Promise<Array<TarEntryHeader & { data: Buffer }>> {
  const out: Array<TarEntryHeader & { data: Buffer }> = [];
  await readTar([archive], {
    directory: (h) => void out.push({ ...h, data: Buffer.alloc(0) }),
    file: (h) => {
      const parts: Buffer[] = [];
      return { write: (c) => void parts.push(Buffer.from(c)), end: () => void out.push({ ...h, data: Buffer.concat(parts) }) };
    },
  });
  return out;
}
