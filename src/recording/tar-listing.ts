// kubectl cp made legible: a streaming tar reader that lists the regular files of an archive
// flowing through a session (name, size, SHA-256 of the content) without keeping the archive, and
// the heuristic that tells, from the exec command, which channel carries one.
//
// Reader: POSIX ustar (name + prefix), GNU long names (typeflag 'L'), pax extended headers ('x':
// `path`, `size`); GNU base-256 sizes. Only regular files ('0', '\0', '7') are listed; directories,
// links, devices, GNU 'K' long link names and pax globals are skipped. Every header's checksum is
// verified: a stream whose first block is not a tar header is "not-tar" and yields nothing (so a
// misdetected command costs nothing); a bad header later stops the listing ("corrupt"). Memory is
// bounded: one 512-byte header, long-name/pax data up to `maxMetaBytes`, at most `maxFiles`
// entries returned (the rest are only counted).

import { createHash, type Hash } from 'node:crypto';

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

const BLOCK = 512;

type State =
  | { kind: 'header' }
  | { kind: 'file'; name: string; size: number; left: number; hash: Hash }
  | { kind: 'meta'; type: 'L' | 'x'; left: number; size: number; parts: Buffer[]; kept: number }
  | { kind: 'skip'; left: number }
  | { kind: 'done'; status: 'complete' | 'not-tar' | 'corrupt' };

export class TarLister {
  private state: State = { kind: 'header' };
  private readonly header = Buffer.alloc(BLOCK);
  private headerFill = 0;
  private zeroBlocks = 0;
  private headersSeen = 0;
  private longName: string | undefined;
  private pax: { path?: string; size?: number } = {};
  private filesSeen = 0;
  private omittedFiles = 0;
  private bytes = 0;
  private readonly maxFiles: number;
  private readonly maxMetaBytes: number;

  constructor(opts: TarListerOptions = {}) {
    this.maxFiles = opts.maxFiles ?? 10_000;
    this.maxMetaBytes = opts.maxMetaBytes ?? 1024 * 1024;
  }

  /** Feeds archive bytes; returns the regular files completed by them. */
  push(chunk: Uint8Array): TarFileEntry[] {
    const out: TarFileEntry[] = [];
    let off = 0;
    while (off < chunk.length && this.state.kind !== 'done') {
      const st = this.state;
      const avail = chunk.length - off;
      switch (st.kind) {
        case 'header': {
          const n = Math.min(BLOCK - this.headerFill, avail);
          this.header.set(chunk.subarray(off, off + n), this.headerFill);
          this.headerFill += n;
          off += n;
          if (this.headerFill === BLOCK) {
            this.headerFill = 0;
            this.onHeader(out);
          }
          break;
        }
        case 'file': {
          const n = Math.min(st.left, avail);
          st.hash.update(chunk.subarray(off, off + n));
          st.left -= n;
          off += n;
          if (st.left === 0) this.finishFile(st, out);
          break;
        }
        case 'meta': {
          const n = Math.min(st.left, avail);
          const room = Math.max(0, Math.min(n, this.maxMetaBytes - st.kept));
          if (room > 0) {
            st.parts.push(Buffer.from(chunk.subarray(off, off + room)));
            st.kept += room;
          }
          st.left -= n;
          off += n;
          if (st.left === 0) this.finishMeta(st);
          break;
        }
        case 'skip': {
          const n = Math.min(st.left, avail);
          st.left -= n;
          off += n;
          if (st.left === 0) this.state = { kind: 'header' };
          break;
        }
      }
    }
    this.bytes += off;
    return out;
  }

  /** Set once the lister has stopped for good (end-of-archive, or not/no longer a tar stream). */
  get outcome(): 'complete' | 'not-tar' | 'corrupt' | undefined {
    return this.state.kind === 'done' ? this.state.status : undefined;
  }

  /** The stream is over: how the listing went. */
  end(): TarListSummary {
    let status: TarListStatus;
    const st = this.state;
    if (st.kind === 'done') status = st.status;
    else if (this.bytes === 0) status = 'empty';
    else if (st.kind === 'header' && this.headerFill === 0 && this.headersSeen > 0) status = 'complete';
    else if (this.headersSeen === 0) status = 'not-tar';
    else status = 'truncated';
    return { status, files: this.filesSeen, omitted: this.omittedFiles, bytes: this.bytes };
  }

  private onHeader(out: TarFileEntry[]): void {
    const h = this.header;
    if (h.every((b) => b === 0)) {
      this.zeroBlocks += 1;
      if (this.zeroBlocks >= 2) this.state = { kind: 'done', status: this.headersSeen > 0 ? 'complete' : 'not-tar' };
      return;
    }
    this.zeroBlocks = 0;
    const fail = (): void => {
      this.state = { kind: 'done', status: this.headersSeen === 0 ? 'not-tar' : 'corrupt' };
    };
    if (!checksumOk(h)) return fail();
    const sizeField = parseNumeric(h.subarray(124, 136));
    if (sizeField === undefined) return fail();
    this.headersSeen += 1;
    const type = String.fromCharCode(h[156]!);
    const padded = (n: number): number => n + ((BLOCK - (n % BLOCK)) % BLOCK);

    if (type === 'L' || type === 'x') {
      if (sizeField === 0) return;
      this.state = { kind: 'meta', type, left: padded(sizeField), size: sizeField, parts: [], kept: 0 };
      return;
    }
    const size = type === '0' || type === '\0' || type === '7' ? (this.pax.size ?? sizeField) : sizeField;
    const name = this.pax.path ?? this.longName ?? headerName(h);
    this.pax = {};
    this.longName = undefined;
    if (type === '0' || type === '\0' || type === '7') {
      this.filesSeen += 1;
      const st = { kind: 'file' as const, name, size, left: size, hash: createHash('sha256') };
      // Content is followed by padding to the block size: skipped after the file.
      this.pendingPadding = padded(size) - size;
      if (size === 0) this.finishFile(st, out);
      else this.state = st;
      return;
    }
    // Other entries (directories, links, devices, 'K', 'g', sparse...): skip their data.
    const skip = type === '1' || type === '2' || type === '3' || type === '4' || type === '5' || type === '6' ? 0 : padded(sizeField);
    this.state = skip > 0 ? { kind: 'skip', left: skip } : { kind: 'header' };
  }

  /** Padding after the current file's content, to the next block. */
  private pendingPadding = 0;

  private finishFile(st: Extract<State, { kind: 'file' }>, out: TarFileEntry[]): void {
    const entry = { name: st.name, size: st.size, sha256: st.hash.digest('hex') };
    if (this.filesSeen > this.maxFiles) this.omittedFiles += 1;
    else out.push(entry);
    this.state = this.pendingPadding > 0 ? { kind: 'skip', left: this.pendingPadding } : { kind: 'header' };
    this.pendingPadding = 0;
  }

  private finishMeta(st: Extract<State, { kind: 'meta' }>): void {
    const data = Buffer.concat(st.parts).subarray(0, Math.min(st.size, st.kept));
    if (st.type === 'L') this.longName = decodeName(data);
    else this.pax = { ...this.pax, ...parsePax(data) };
    this.state = { kind: 'header' };
  }
}

function checksumOk(h: Buffer): boolean {
  const stored = parseOctal(h.subarray(148, 156));
  if (stored === undefined) return false;
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const b = i >= 148 && i < 156 ? 0x20 : h[i]!;
    unsigned += b;
    signed += b > 127 ? b - 256 : b;
  }
  return stored === unsigned || stored === signed;
}

function parseOctal(field: Uint8Array): number | undefined {
  let s = '';
  for (const b of field) {
    if (b === 0) break;
    s += String.fromCharCode(b);
  }
  s = s.trim();
  if (!/^[0-7]+$/.test(s)) return s === '' ? 0 : undefined;
  return parseInt(s, 8);
}

/** Octal, or GNU base-256 (high bit of the first byte set). */
function parseNumeric(field: Uint8Array): number | undefined {
  if (field[0]! & 0x80) {
    if (field[0]! & 0x40) return undefined; // negative
    let n = field[0]! & 0x3f;
    for (let i = 1; i < field.length; i++) n = n * 256 + field[i]!;
    return Number.isSafeInteger(n) ? n : undefined;
  }
  return parseOctal(field);
}

function cString(field: Uint8Array): Uint8Array {
  const end = field.indexOf(0);
  return end < 0 ? field : field.subarray(0, end);
}

function decodeName(bytes: Uint8Array): string {
  return new TextDecoder('utf-8', { ignoreBOM: true }).decode(cString(bytes));
}

function headerName(h: Buffer): string {
  const name = decodeName(h.subarray(0, 100));
  // POSIX ustar ("ustar\0" + "00") has a prefix field; old GNU ("ustar  \0") uses those bytes for
  // other things.
  const posix = h.subarray(257, 263).toString('latin1') === 'ustar\0';
  const prefix = posix ? decodeName(h.subarray(345, 500)) : '';
  return prefix ? `${prefix}/${name}` : name;
}

/** pax records: "<len> <key>=<value>\n", len counting the whole record. */
function parsePax(data: Buffer): { path?: string; size?: number } {
  const out: { path?: string; size?: number } = {};
  let pos = 0;
  while (pos < data.length) {
    const sp = data.indexOf(0x20, pos);
    if (sp < 0) break;
    const len = Number(data.subarray(pos, sp).toString('latin1'));
    if (!Number.isInteger(len) || len <= 0 || pos + len > data.length) break;
    const record = data.subarray(sp + 1, pos + len - 1); // drop the trailing "\n"
    const eq = record.indexOf(0x3d);
    if (eq > 0) {
      const key = record.subarray(0, eq).toString('utf8');
      const value = record.subarray(eq + 1).toString('utf8');
      if (key === 'path') out.path = value;
      else if (key === 'size' && /^\d+$/.test(value)) out.size = Number(value);
    }
    pos += len;
  }
  return out;
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
