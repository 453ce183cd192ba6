// An append-only output file. `write` is synchronous: it goes straight to the kernel and a failure
// throws at once into the caller (file headers at creation, before a session or connection runs).
// `append` writes one large batch off the event loop (libuv's thread pool) and rejects on failure
// (both recorders, through batch-writer.ts, which then cut the session). The SHA-256 of the file is accumulated as it is
// written, so closing needs no re-read. A quiet file can be parked (its descriptor closed until the
// next write), so thousands of idle sessions hold two sockets each, not four descriptors.
import { createHash, type Hash } from 'node:crypto';
import * as fs from 'node:fs';
import { diskProgressed } from './disk-progress.js';

/** The file-system calls used; tests inject failures through this (e.g. ENOSPC mid-session). */
export interface SyncIo {
  openSync(path: string, flags: string | number, mode: number): number;
  writeSync(fd: number, buffer: Uint8Array, offset: number, length: number): number;
  fsyncSync(fd: number): void;
  closeSync(fd: number): void;
  fstatSync(fd: number): { dev: number; ino: number; size: number };
  statSync(path: string): { dev: number; ino: number; size: number };
}

export const nodeSyncIo: SyncIo = {
  openSync: (path, flags, mode) => fs.openSync(path, flags, mode),
  writeSync: (fd, buffer, offset, length) => fs.writeSync(fd, buffer, offset, length),
  fsyncSync: (fd) => fs.fsyncSync(fd),
  closeSync: (fd) => fs.closeSync(fd),
  fstatSync: (fd) => fs.fstatSync(fd),
  statSync: (path) => fs.statSync(path),
};

/** Asynchronous calls for batched writes (tests inject failures and slow disks through this). */
export interface FileIo extends SyncIo {
  write(fd: number, buffer: Uint8Array, offset: number, length: number): Promise<number>;
  fsync(fd: number): Promise<void>;
}

export const nodeFileIo: FileIo = {
  ...nodeSyncIo,
  write: (fd, buffer, offset, length) => new Promise((resolve, reject) => fs.write(fd, buffer, offset, length, null, (err, n) => (err ? reject(err) : resolve(n)))),
  fsync: (fd) => new Promise((resolve, reject) => fs.fsync(fd, (err) => (err ? reject(err) : resolve()))),
};

/** Reopening a parked file: append to it, never create it (a recording file that vanished fails the write). */
const REOPEN_FLAGS = fs.constants.O_WRONLY | fs.constants.O_APPEND;

export class AppendFile {
  /** Null once closed, and while parked. */
  private fd: number | null;
  /** Closed until the next write or sync (park()): not closed for good. */
  private parked = false;
  /** An append() or an fsync in flight: the file is not parked under it. */
  private busy = 0;
  private readonly hash: Hash = createHash('sha256');
  private bytes = 0;
  private dirty = false;

  /** The file created (a parked file is opened again only if the path still leads to it). */
  private readonly dev: number;
  private readonly ino: number;

  /** Creates the file; it must not exist yet ('wx': a recording is never overwritten). */
  constructor(
    readonly path: string,
    private readonly io: SyncIo = nodeSyncIo,
    private readonly mode = 0o640,
  ) {
    const fd = io.openSync(path, 'wx', mode);
    try {
      ({ dev: this.dev, ino: this.ino } = io.fstatSync(fd));
    } catch (err) {
      io.closeSync(fd);
      throw err;
    }
    this.fd = fd;
  }

  /**
   * The descriptor to write or sync with: a parked file is opened again (append, no create), and
   * only if it is the file created, holding exactly what was written to it. Another file renamed
   * or linked to the path, or the file truncated or appended to, is refused: writing on would put
   * the recording's rest somewhere else and leave a hash that describes no file.
   */
  private descriptor(): number {
    if (this.fd !== null) return this.fd;
    if (!this.parked) throw new Error(`${this.path} is closed`);
    const fd = this.io.openSync(this.path, REOPEN_FLAGS, this.mode);
    try {
      this.mustBeOurs(this.io.fstatSync(fd));
    } catch (err) {
      this.io.closeSync(fd);
      throw err;
    }
    this.fd = fd;
    this.parked = false;
    return fd;
  }

  /** Opens a parked file again now (throws as its next write would); nothing when it is not parked. */
  unpark(): void {
    if (this.parked) this.descriptor();
  }

  /**
   * Closes the descriptor until the next write or sync, when no append or fsync is in flight (a quiet
   * recording). What was written and not yet fsync'd stays due: fsync through the descriptor
   * opened again flushes the file, whichever descriptor wrote it.
   */
  park(): void {
    if (this.fd === null || this.busy > 0 || this.frozen) return;
    const fd = this.fd;
    this.fd = null;
    this.parked = true;
    try {
      this.io.closeSync(fd);
    } catch {
      // Linux releases the descriptor even when close reports an error; a write error it reports
      // is the next fsync's (through the descriptor opened again).
    }
  }

  /** Whether the descriptor is parked (tests). */
  get isParked(): boolean {
    return this.parked;
  }

  get size(): number {
    return this.bytes;
  }

  /** Not closed for good (a parked file is open: its next write opens it again). */
  get isOpen(): boolean {
    return this.fd !== null || this.parked;
  }

  /** Writes all of `data` (looping over short writes) or throws. */
  write(data: Uint8Array): void {
    const fd = this.descriptor();
    let off = 0;
    while (off < data.length) {
      const n = this.io.writeSync(fd, data, off, data.length - off);
      if (n <= 0) throw new Error(`short write to ${this.path}`);
      off += n;
    }
    this.hash.update(data);
    this.bytes += data.length;
    this.dirty = true;
  }

  /**
   * Writes all of `parts` in order, off the event loop, looping over short writes; rejects on the
   * first failure. The caller must not start another append (or close) before this one settled.
   */
  async append(parts: readonly Uint8Array[], io: FileIo): Promise<void> {
    this.busy++;
    try {
      for (const data of parts) {
        const fd = this.descriptor();
        let off = 0;
        while (off < data.length) {
          if (this.frozen) throw new Error(`${this.path}: the recording ended while a write to it hung`);
          const n = await io.write(fd, data, off, data.length - off);
          if (n <= 0) throw new Error(`short write to ${this.path}`);
          diskProgressed();
          off += n;
        }
        this.hash.update(data);
        this.bytes += data.length;
        this.dirty = true;
      }
    } finally {
      this.busy--;
    }
  }

  /** fsync off the event loop if anything was written since the last one. */
  async syncAsync(io: FileIo): Promise<void> {
    if (!this.isOpen || !this.dirty) return;
    const fd = this.descriptor();
    this.dirty = false;
    this.busy++;
    try {
      await io.fsync(fd);
      diskProgressed();
    } finally {
      this.busy--;
    }
  }

  /** fsync if anything was written since the last one. */
  sync(): void {
    if (!this.isOpen || !this.dirty) return;
    this.io.fsyncSync(this.descriptor());
    this.dirty = false;
  }

  /** fsync and close; returns the SHA-256 (hex) of everything written. Idempotent. */
  close(): string {
    this.unparkClean();
    if (this.isOpen) {
      const fd = this.descriptor();
      try {
        this.sync();
      } finally {
        this.fd = null;
        this.io.closeSync(fd);
      }
    }
    return this.sha256();
  }

  /** fsync (off the event loop) and close; returns the SHA-256 (hex). No append may be running. */
  async closeAsync(io: FileIo): Promise<string> {
    this.unparkClean();
    if (this.isOpen) {
      const fd = this.descriptor();
      try {
        await this.syncAsync(io);
      } finally {
        this.fd = null;
        io.closeSync(fd);
      }
    }
    return this.sha256();
  }

  /**
   * A parked file with nothing left to fsync is closed as it is (no open just to close), once its
   * path still leads to it, unchanged: else the hash returned would describe no file at the path.
   */
  private unparkClean(): void {
    if (!this.parked || this.dirty) return;
    this.mustBeOurs(this.io.statSync(this.path));
    this.parked = false;
  }

  /** Throws unless `st` is the file created, holding exactly what was written to it. */
  private mustBeOurs(st: { dev: number; ino: number; size: number }): void {
    if (st.dev === this.dev && st.ino === this.ino && st.size === this.bytes) return;
    const what = st.dev !== this.dev || st.ino !== this.ino ? 'another file is at its path' : `it holds ${st.size} bytes, ${this.bytes} were written`;
    throw new Error(`not the file this recording wrote (${what}): not written to`);
  }

  private frozen = false;

  /**
   * The recording ended while a write to this file hung: its descriptor stays open (closed, the
   * write would land in whatever file gets the number next), but nothing more is written once the
   * hung write returns, so the file changes at most by that write after its hash was taken.
   */
  freeze(): void {
    this.frozen = true;
  }

  /** Closes without fsync and without throwing (after a failure). */
  abandon(): void {
    this.parked = false;
    if (this.fd === null) return;
    const fd = this.fd;
    this.fd = null;
    try {
      this.io.closeSync(fd);
    } catch {
      // already failing; nothing more to do
    }
  }

  private digest: string | undefined;
  sha256(): string {
    if (this.isOpen) return this.hash.copy().digest('hex');
    this.digest ??= this.hash.digest('hex');
    return this.digest;
  }
}
