// After a crash: make an interrupted session's files whole again and compute the hashes the
// session row would have received at the end. The recorder writes whole lines and whole records
// with one write() each, so a process crash leaves complete files; a power loss or a full disk can
// leave a partial last line / record, which the parsers already ignore and which this removes.
// For the startup path (session/recovery.ts): each open session: recoverRecording() -> setRecording()
// -> SessionStore.interrupt() with its session.end row.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { encodeV2Header, formatV2Time } from './asciicast-v2.js';
import { encodeV3Header } from './asciicast-v3.js';
import { eventLine } from './cast-lines.js';
import { castEventOf, secondsToUs } from './cast-reader.js';
import { startMarkerLabel } from './recorder.js';
import type { CastHeader } from './events.js';
import { scanRawSidecarFile, type RawSidecarMeta } from './raw-sidecar.js';

export const INTERRUPTED_MARKER = 'session interrupted: the bastion stopped while it was open';

export interface RecoveryResult {
  castPath: string;
  castSha256: string;
  rawPath: string;
  rawSha256: string;
  channelSha256: Record<string, string>;
  /** What was changed (all false when `repair` is false or nothing needed it). */
  castTruncatedTail: boolean;
  castHeaderWritten: boolean;
  rawTruncatedTail: boolean;
  interruptedMarkerWritten: boolean;
}

export interface RecoverOptions {
  castPath: string;
  rawPath: string;
  /**
   * Default true: truncate partial tails, write a missing header, append INTERRUPTED_MARKER (once:
   * running it again changes nothing). False: only compute the hashes.
   */
  repair?: boolean;
}

function sha256File(path: string): string {
  const h = createHash('sha256');
  const fd = fs.openSync(path, 'r');
  try {
    const buf = Buffer.allocUnsafe(1024 * 1024);
    for (;;) {
      const n = fs.readSync(fd, buf, 0, buf.length, null);
      if (n <= 0) break;
      h.update(buf.subarray(0, n));
    }
  } finally {
    fs.closeSync(fd);
  }
  return h.digest('hex');
}

/** Length of the prefix that ends with the last newline, and the last complete line's text. */
function castTail(path: string): { size: number; validLength: number; lastLine: string | undefined } {
  const fd = fs.openSync(path, 'r');
  try {
    const size = fs.fstatSync(fd).size;
    // Read backwards in blocks until the last two newlines (or the start) are found.
    const block = 64 * 1024;
    let pos = size;
    let tail = Buffer.alloc(0);
    for (;;) {
      const lastNl = tail.lastIndexOf(0x0a);
      const prevNl = lastNl > 0 ? tail.lastIndexOf(0x0a, lastNl - 1) : -1;
      if ((lastNl >= 0 && prevNl >= 0) || pos === 0) {
        if (lastNl < 0) return { size, validLength: 0, lastLine: undefined };
        return { size, validLength: pos + lastNl + 1, lastLine: tail.subarray(prevNl + 1, lastNl).toString('utf8') };
      }
      const n = Math.min(block, pos);
      pos -= n;
      const buf = Buffer.alloc(n);
      fs.readSync(fd, buf, 0, n, pos);
      tail = Buffer.concat([buf, tail]);
    }
  } finally {
    fs.closeSync(fd);
  }
}

export function recoverRecording(opts: RecoverOptions): RecoveryResult {
  const repair = opts.repair ?? true;
  const raw = scanRawSidecarFile(opts.rawPath);
  let rawTruncatedTail = false;
  if (raw.truncated && repair && raw.validLength > 0) {
    fs.truncateSync(opts.rawPath, raw.validLength);
    rawTruncatedTail = true;
  }
  const meta = raw.meta as RawSidecarMeta & { castHeader?: CastHeader };
  const format = meta.castFormat === 'v3' ? 'v3' : 'v2';

  let castTruncatedTail = false;
  let castHeaderWritten = false;
  let interruptedMarkerWritten = false;
  const tail = castTail(opts.castPath);
  // Undefined when the last complete line is the header (no events yet).
  const lastEvent = tail.lastLine === undefined ? undefined : castEventOf(tail.lastLine);
  const alreadyMarked = lastEvent?.code === 'm' && lastEvent.data === INTERRUPTED_MARKER;
  if (repair && !alreadyMarked) {
    if (tail.validLength < tail.size) {
      fs.truncateSync(opts.castPath, tail.validLength);
      castTruncatedTail = true;
    }
    let append = '';
    let lastTime = '0.0';
    if (tail.validLength === 0) {
      // Nothing (or only a partial header) was written: rebuild the header from the sidecar.
      const header = meta.castHeader ?? { cols: 80, rows: 24, extra: {} };
      append += format === 'v2' ? encodeV2Header(header) : encodeV3Header(header);
      append += eventLine(format === 'v2' ? '0.0' : '0.000', 'm', startMarkerLabel(meta.session, meta.approval));
      castHeaderWritten = true;
    } else if (format === 'v2' && lastEvent !== undefined) {
      lastTime = formatV2Time(secondsToUs(lastEvent.seconds));
    }
    // v2: at the last event's absolute time; v3: zero interval after it.
    append += eventLine(format === 'v2' ? lastTime : '0.000', 'm', INTERRUPTED_MARKER);
    fs.appendFileSync(opts.castPath, append, 'utf8');
    interruptedMarkerWritten = true;
  }
  const channelSha256 = { ...raw.channelSha256 };
  if (meta.stdinRecorded === false) delete channelSha256.stdin;
  return {
    castPath: opts.castPath,
    castSha256: sha256File(opts.castPath),
    rawPath: opts.rawPath,
    rawSha256: sha256File(opts.rawPath),
    channelSha256,
    castTruncatedTail,
    castHeaderWritten,
    rawTruncatedTail,
    interruptedMarkerWritten,
  };
}
