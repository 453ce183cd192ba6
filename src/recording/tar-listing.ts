// kubectl cp made legible: a streaming tar reader that lists the regular files of an archive
// flowing through a session (name, size, SHA-256 of the content) without keeping the archive, and
// the heuristic that tells, from the exec command, which channel carries one. The header format
// and the block framing are src/tar's, shared with the evidence archives; what is here is the
// lister's policy.
//
// Reader: POSIX ustar (name + prefix), GNU long names (typeflag 'L'), pax extended headers ('x':
// `path`, `size`); GNU base-256 sizes. Only regular files ('0', '\0', '7') are listed; directories,
// links, devices, GNU 'K' long link names and pax globals are skipped. Every header's checksum is
// verified: a stream whose first block is not a tar header is "not-tar" and yields nothing (so a
// misdetected command costs nothing); a bad header later stops the listing ("corrupt"). Memory is
// bounded: one 512-byte header, long-name/pax data up to `maxMetaBytes`, at most `maxFiles`
// entries returned (the rest are only counted).

import { createHash, type Hash } from 'node:crypto';
import { TarFramer } from '../tar/framer.js';
import { decodePaxRecords, decodeTarHeader, decodeTarString, isZeroBlock, type DecodedTarHeader } from '../tar/header.js';

export interface TarFileEntry {
  /** Path as stored in the archive (UTF-8 decoded, invalid bytes as U+FFFD). */
  name: string;
  size: number;
  /** SHA-256 (hex) of the file's content. */
  sha256: string;
}

export type TarListStatus =
  /** End-of-archive blocks seen, or the stream ended cleanly on a header boundary. */
  | 'complete'
  /** The stream ended inside an entry (the last entry is not listed). */
  | 'truncated'
  /** The first block was not a tar header: nothing was listed. */
  | 'not-tar'
  /** A later header failed its checksum or was malformed: listing stopped there. */
  | 'corrupt'
  /** No bytes at all. */
  | 'empty';

export interface TarListSummary {
  status: TarListStatus;
  /** Regular files seen (listed or not). */
  files: number;
  /** Files seen beyond `maxFiles` (counted, not returned). */
  omitted: number;
  /** Archive bytes consumed. */
  bytes: number;
}

export interface TarListerOptions {
  /** Entries returned at most; later ones are only counted. Default 10,000. */
  maxFiles?: number;
  /** Largest GNU long name / pax header kept. Default 1 MiB. */
  maxMetaBytes?: number;
}

/** What the content after the current header is for. */
type Entry =
  | { kind: 'file'; name: string; size: number; hash: Hash }
  | { kind: 'meta'; type: 'L' | 'x'; parts: Buffer[]; kept: number }
  | { kind: 'skip' };

const FILE_TYPES = new Set(['0', '\0', '7']);
/** Links, devices, directories, FIFOs: their size field says nothing about content. */
const NO_CONTENT_TYPES = new Set(['1', '2', '3', '4', '5', '6']);

export class TarLister {
  private readonly framer = new TarFramer();
  private entry: Entry = { kind: 'skip' };
  private done: 'complete' | 'not-tar' | 'corrupt' | undefined;
  private zeroBlocks = 0;
  private headersSeen = 0;
  private longName: string | undefined;
  private pax: { path?: string; size?: number } = {};
  private filesSeen = 0;
  private omittedFiles = 0;
  private readonly maxFiles: number;
  private readonly maxMetaBytes: number;

  constructor(opts: TarListerOptions = {}) {
    this.maxFiles = opts.maxFiles ?? 10_000;
    this.maxMetaBytes = opts.maxMetaBytes ?? 1024 * 1024;
  }

  /** Feeds archive bytes; returns the regular files completed by them. */
  push(chunk: Uint8Array): TarFileEntry[] {
    const out: TarFileEntry[] = [];
    if (this.done) return out;
    this.framer.feed(chunk);
    while (!this.done) {
      const frame = this.framer.next();
      if (!frame) break;
      if (frame.kind === 'header') this.onHeader(frame.block, out);
      else this.onData(frame.data, frame.last, out);
    }
    return out;
  }

  /** Set once the lister has stopped for good (end-of-archive, or not/no longer a tar stream). */
  get outcome(): 'complete' | 'not-tar' | 'corrupt' | undefined {
    return this.done;
  }

  /** The stream is over: how the listing went. */
  end(): TarListSummary {
    const bytes = this.framer.consumed;
    let status: TarListStatus;
    if (this.done) status = this.done;
    else if (bytes === 0) status = 'empty';
    else if (this.framer.atBoundary && this.headersSeen > 0) status = 'complete';
    else if (this.headersSeen === 0) status = 'not-tar';
    else status = 'truncated';
    return { status, files: this.filesSeen, omitted: this.omittedFiles, bytes };
  }

  private onHeader(block: Buffer, out: TarFileEntry[]): void {
    if (isZeroBlock(block)) {
      this.zeroBlocks += 1;
      if (this.zeroBlocks >= 2) this.done = this.headersSeen > 0 ? 'complete' : 'not-tar';
      return;
    }
    this.zeroBlocks = 0;
    let h: DecodedTarHeader;
    try {
      h = decodeTarHeader(block);
    } catch {
      this.done = this.headersSeen === 0 ? 'not-tar' : 'corrupt';
      return;
    }
    this.headersSeen += 1;
    const type = h.typeflag;
    if (type === 'L' || type === 'x') {
      if (h.size === 0) return;
      this.entry = { kind: 'meta', type, parts: [], kept: 0 };
      this.framer.content(h.size);
      return;
    }
    const isFile = FILE_TYPES.has(type);
    const size = isFile ? (this.pax.size ?? h.size) : h.size;
    const name = this.pax.path ?? this.longName ?? h.name;
    this.pax = {};
    this.longName = undefined;
    if (isFile) {
      this.filesSeen += 1;
      this.entry = { kind: 'file', name, size, hash: createHash('sha256') };
      if (size === 0) this.finishFile(out);
      else this.framer.content(size);
      return;
    }
    // Other entries (directories, links, devices, 'K', 'g', sparse...): skip their data.
    this.entry = { kind: 'skip' };
    if (!NO_CONTENT_TYPES.has(type)) this.framer.content(h.size);
  }

  private onData(data: Buffer, last: boolean, out: TarFileEntry[]): void {
    const e = this.entry;
    if (e.kind === 'file') {
      e.hash.update(data);
      if (last) this.finishFile(out);
    } else if (e.kind === 'meta') {
      const room = Math.max(0, Math.min(data.length, this.maxMetaBytes - e.kept));
      if (room > 0) {
        e.parts.push(Buffer.from(data.subarray(0, room)));
        e.kept += room;
      }
      if (last) this.finishMeta(e);
    }
  }

  private finishFile(out: TarFileEntry[]): void {
    const e = this.entry;
    if (e.kind !== 'file') return;
    const entry = { name: e.name, size: e.size, sha256: e.hash.digest('hex') };
    if (this.filesSeen > this.maxFiles) this.omittedFiles += 1;
    else out.push(entry);
    this.entry = { kind: 'skip' };
  }

  private finishMeta(e: Extract<Entry, { kind: 'meta' }>): void {
    const data = Buffer.concat(e.parts);
    if (e.type === 'L') this.longName = decodeTarString(data);
    else {
      const records = decodePaxRecords(data);
      const path = records.get('path');
      const size = records.get('size');
      if (path !== undefined) this.pax.path = path;
      if (size !== undefined && /^\d+$/.test(size)) this.pax.size = Number(size);
    }
    this.entry = { kind: 'skip' };
  }
}

// ---------------------------------------------------------------------------------------------
// Which exec commands carry a tar archive

export interface TarTransfer {
  /** `in`: into the pod (`tar x… -f -` reads stdin); `out`: out of it (`tar c… -f -` writes stdout). */
  direction: 'in' | 'out';
  channel: 'stdin' | 'stdout';
  /** A compression flag (z, j, J, Z, --gzip, ...): the archive cannot be listed. */
  compressed: boolean;
  /** `kubectl-cp`: one of the exact commands kubectl cp sends; `tar`: another tar invocation. */
  via: 'kubectl-cp' | 'tar';
}

const TAR_NAMES = new Set(['tar', 'gtar', 'bsdtar']);
/** Short options that take an argument (GNU tar). */
const ARG_LETTERS = new Set(['f', 'C', 'b', 'T', 'X', 'L', 'N', 'V', 'g', 'K', 'F', 'H']);
const COMPRESS_LETTERS = new Set(['z', 'j', 'J', 'Z']);
const COMPRESS_LONG = /^--(gzip|gunzip|ungzip|bzip2|xz|lzip|lzma|lzop|zstd|compress|uncompress|use-compress-program)(=|$)/;
/** Long options that take a separate argument when written without "=". */
const LONG_WITH_ARG = new Set(['--file', '--directory', '--blocking-factor', '--files-from', '--exclude-from', '--tape-length', '--newer', '--label', '--listed-incremental', '--starting-file', '--format', '--owner', '--group', '--mode', '--transform', '--exclude']);

function basename(p: string): string {
  const i = p.lastIndexOf('/');
  return i < 0 ? p : p.slice(i + 1);
}

/**
 * Does this exec carry a tar archive on stdin or stdout? Heuristic, by the command only:
 *
 * - kubectl cp INTO a pod sends `tar -xmf -` or, with --no-preserve, `tar --no-same-permissions
 *   --no-same-owner -xmf -`, both optionally followed by `-C DIR` (archive on stdin).
 * - kubectl cp OUT of a pod sends `tar cf - PATH` (archive on stdout), or with --retries
 *   `sh -c "tar cf - PATH | tail -c+N"` (a resumed copy starts mid-archive: its listing comes out
 *   "not-tar" and only the bytes are kept).
 * - Any other `tar` (also gtar, bsdtar, /bin/tar) whose options say extract (x, --extract, --get)
 *   or create (c, --create) with archive `-` (f -, -f -, -f-, --file=-, --file -) counts too, in
 *   old-style (`tar xf -`), short (`-x -f -`) or long form.
 *
 * Never with a TTY: a tar stream through a terminal is mangled, and kubectl cp never asks for one.
 * Archives piped through a shell other than kubectl's retry form are not recognised.
 */
export function detectTarTransfer(command: readonly string[], tty: boolean): TarTransfer | null {
  if (tty || command.length === 0) return null;
  const prog = basename(command[0]!);
  if ((prog === 'sh' || prog === 'bash') && command[1] === '-c' && command.length === 3) {
    if (/^tar cf - .+ \| tail -c\+\d+$/.test(command[2]!)) return { direction: 'out', channel: 'stdout', compressed: false, via: 'kubectl-cp' };
    return null;
  }
  if (!TAR_NAMES.has(prog)) return null;
  const args = command.slice(1);
  let mode: 'x' | 'c' | undefined;
  let archive: string | undefined;
  let compressed = false;
  const letter = (c: string): void => {
    if (c === 'x') mode = 'x';
    else if (c === 'c') mode = 'c';
    else if (COMPRESS_LETTERS.has(c)) compressed = true;
  };
  let i = 0;
  // Old-style: the first word is a bundle of letters without a dash; argument-taking letters take
  // the following words in order.
  if (args[0] !== undefined && !args[0].startsWith('-')) {
    const bundle = args[0];
    i = 1;
    for (const c of bundle) {
      letter(c);
      if (ARG_LETTERS.has(c)) {
        const v = args[i++];
        if (c === 'f') archive = v;
      }
    }
  }
  for (; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--') break;
    if (a.startsWith('--')) {
      if (a === '--extract' || a === '--get') mode = 'x';
      else if (a === '--create') mode = 'c';
      else if (COMPRESS_LONG.test(a)) compressed = true;
      if (a.startsWith('--file=')) archive = a.slice('--file='.length);
      else if (a === '--file') archive = args[++i];
      else if (LONG_WITH_ARG.has(a)) i++;
      continue;
    }
    if (a.startsWith('-') && a.length > 1) {
      for (let j = 1; j < a.length; j++) {
        const c = a[j]!;
        letter(c);
        if (ARG_LETTERS.has(c)) {
          const v = j + 1 < a.length ? a.slice(j + 1) : args[++i];
          if (c === 'f') archive = v;
          break;
        }
      }
    }
  }
  if (archive !== '-' || mode === undefined) return null;
  const via = isKubectlCpCommand(command) ? 'kubectl-cp' : 'tar';
  return mode === 'x' ? { direction: 'in', channel: 'stdin', compressed, via } : { direction: 'out', channel: 'stdout', compressed, via };
}

function isKubectlCpCommand(c: readonly string[]): boolean {
  const s = c.join('\u0000');
  const withDir = (base: string[]): boolean => s === base.join('\u0000') || (c.length === base.length + 2 && s.startsWith(base.join('\u0000') + '\u0000') && c[base.length] === '-C');
  if (withDir(['tar', '-xmf', '-'])) return true;
  if (withDir(['tar', '--no-same-permissions', '--no-same-owner', '-xmf', '-'])) return true;
  return c.length === 4 && c[0] === 'tar' && c[1] === 'cf' && c[2] === '-';
}
