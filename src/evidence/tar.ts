// Evidence archives: a POSIX ustar writer and reader for what bundles hold (regular files and
// directories), so no dependency is pulled in. The header format and the block framing are
// src/tar's, shared with the kubectl cp lister; what is here is the evidence policy. Sizes at or
// above 8 GiB use the base-256 size field GNU tar and libarchive read. The reader refuses anything
// else (links, devices, pax and GNU long name records), unsafe names and stray data, and checks
// every header's checksum.
import { TarFramer } from '../tar/framer.js';
import { BLOCK, decodeTarHeader, encodeTarHeader, isZeroBlock, paddedSize, TarFormatError } from '../tar/header.js';

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
  for (const e of entries) total += BLOCK + (e.type === 'file' ? paddedSize(e.size ?? 0) : 0);
  return total;
}

/** Relative, no `.`/`..`/empty segments, no NUL: what may be written and what may be extracted. */
function isSafeName(name: string): boolean {
  return name !== '' && !name.startsWith('/') && !name.includes('\0') && !name.split('/').some((p) => p === '..' || p === '.' || p === '');
}

/** One 512-byte ustar header (directories get the trailing slash tar gives them). */
export function tarHeader(entry: TarEntryHeader): Buffer {
  if (!isSafeName(entry.name)) throw new Error(`tar: unsafe entry name ${JSON.stringify(entry.name)}`);
  const dir = entry.type === 'directory';
  return encodeTarHeader({
    name: dir ? `${entry.name}/` : entry.name,
    typeflag: dir ? '5' : '0',
    size: dir ? 0 : entry.size,
    mode: entry.mode,
    mtime: entry.mtime.getTime() / 1000,
  });
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
    const pad = paddedSize(e.size) - e.size;
    if (pad > 0) yield Buffer.alloc(pad);
  }
  yield Buffer.alloc(2 * BLOCK);
}

// ---------------------------------------------------------------------------------------------
// Reader

function entryHeader(block: Buffer): TarEntryHeader {
  const h = decodeTarHeader(block);
  if (h.format === 'v7') throw new TarFormatError('tar: not a ustar archive');
  let name = h.name;
  let type: TarEntryHeader['type'];
  if (h.typeflag === '0' || h.typeflag === '\0') type = 'file';
  else if (h.typeflag === '5') type = 'directory';
  else throw new TarFormatError(`tar: entry ${JSON.stringify(name)} has unsupported type ${JSON.stringify(h.typeflag)} (only files and directories)`);
  if (type === 'directory' || name.endsWith('/')) {
    type = 'directory';
    name = name.replace(/\/+$/, '');
  }
  if (!isSafeName(name)) throw new TarFormatError(`tar: unsafe entry name ${JSON.stringify(name)}`);
  if (h.mode === undefined) throw new TarFormatError('tar: the mode field is not a number');
  if (h.mtime === undefined) throw new TarFormatError('tar: the mtime field is not a number');
  return { name, type, size: type === 'file' ? h.size : 0, mode: h.mode, mtime: new Date(h.mtime * 1000) };
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
  const framer = new TarFramer();
  let sink: TarFileSink | undefined;
  let zeroBlocks = 0;
  // Anything after the end blocks must be zero padding (tar pads to a record size).
  const trailing = (rest: Buffer): void => {
    if (rest.some((b) => b !== 0)) throw new TarFormatError('tar: data after the end of the archive');
  };
  for await (const chunk of source) {
    framer.feed(chunk);
    if (zeroBlocks === 2) {
      trailing(framer.rest());
      continue;
    }
    for (let frame = framer.next(); frame; frame = framer.next()) {
      if (frame.kind === 'data') {
        await sink!.write(frame.data);
        if (frame.last) await sink!.end();
        continue;
      }
      if (isZeroBlock(frame.block)) {
        if (++zeroBlocks === 2) {
          trailing(framer.rest());
          break;
        }
        continue;
      }
      if (zeroBlocks > 0) throw new TarFormatError('tar: a lone zero block inside the archive');
      const header = entryHeader(frame.block);
      if (header.type === 'directory') {
        await visitor.directory?.(header);
        continue;
      }
      sink = await visitor.file(header);
      if (header.size === 0) await sink.end();
      else framer.content(header.size);
    }
  }
  if (zeroBlocks !== 2) throw new TarFormatError('tar: the archive is truncated (no end-of-archive blocks)');
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
