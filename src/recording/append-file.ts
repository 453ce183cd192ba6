// A synchronous, append-only output file: every write goes straight to the kernel (no user-space
// buffer, so a process crash loses nothing already written) and a failure throws at once, into
// the caller; in the recorder that caller is the relay, which then cuts the session. The SHA-256
// of the file is accumulated as it is written, so closing needs no re-read.
import { createHash, type Hash } from 'node:crypto';
import * as fs from 'node:fs';

/** The file-system calls used; tests inject failures through this (e.g. ENOSPC mid-session). */
export interface SyncIo {
  openSync(path: string, flags: string, mode: number): number;
  writeSync(fd: number, buffer: Uint8Array, offset: number, length: number): number;
  fsyncSync(fd: number): void;
  closeSync(fd: number): void;
}

export const nodeSyncIo: SyncIo = {
  openSync: (path, flags, mode) => fs.openSync(path, flags, mode),
  writeSync: (fd, buffer, offset, length) => fs.writeSync(fd, buffer, offset, length),
  fsyncSync: (fd) => fs.fsyncSync(fd),
  closeSync: (fd) => fs.closeSync(fd),
};

export class AppendFile {
  private fd: number | null;
  private readonly hash: Hash = createHash('sha256');
  private bytes = 0;
  private dirty = false;

  /** Creates the file; it must not exist yet ('wx': a recording is never overwritten). */
  constructor(
    readonly path: string,
    private readonly io: SyncIo = nodeSyncIo,
    mode = 0o640,
  ) {
    this.fd = io.openSync(path, 'wx', mode);
  }

  get size(): number {
    return this.bytes;
  }

  get isOpen(): boolean {
    return this.fd !== null;
  }

  /** Writes all of `data` (looping over short writes) or throws. */
  write(data: Uint8Array): void {
    if (this.fd === null) throw new Error(`${this.path} is closed`);
    let off = 0;
    while (off < data.length) {
      const n = this.io.writeSync(this.fd, data, off, data.length - off);
      if (n <= 0) throw new Error(`short write to ${this.path}`);
      off += n;
    }
    this.hash.update(data);
    this.bytes += data.length;
    this.dirty = true;
  }

  /** fsync if anything was written since the last one. */
  sync(): void {
    if (this.fd === null || !this.dirty) return;
    this.io.fsyncSync(this.fd);
    this.dirty = false;
  }

  /** fsync and close; returns the SHA-256 (hex) of everything written. Idempotent. */
  close(): string {
    if (this.fd !== null) {
      const fd = this.fd;
      try {
        this.sync();
      } finally {
        this.fd = null;
        this.io.closeSync(fd);
      }
    }
    return this.sha256();
  }

  /** Closes without fsync and without throwing (after a failure). */
  abandon(): void {
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
    if (this.fd !== null) return this.hash.copy().digest('hex');
    this.digest ??= this.hash.digest('hex');
    return this.digest;
  }
}
