// An append-only output file. `write` is synchronous: it goes straight to the kernel and a failure
// throws at once into the caller (file headers at creation, before a session or connection runs).
// `append` writes one large batch off the event loop (libuv's thread pool) and rejects on failure
// (both recorders, through batch-writer.ts, which then cut the session). The SHA-256 of the file is accumulated as it is
// written, so closing needs no re-read.
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

  /**
   * Writes all of `parts` in order, off the event loop, looping over short writes; rejects on the
   * first failure. The caller must not start another append (or close) before this one settled.
   */
  async append(parts: readonly Uint8Array[], io: FileIo): Promise<void> {
    for (const data of parts) {
      if (this.fd === null) throw new Error(`${this.path} is closed`);
      let off = 0;
      while (off < data.length) {
        if (this.frozen) throw new Error(`${this.path}: the recording ended while a write to it hung`);
        const n = await io.write(this.fd, data, off, data.length - off);
        if (n <= 0) throw new Error(`short write to ${this.path}`);
        off += n;
      }
      this.hash.update(data);
      this.bytes += data.length;
      this.dirty = true;
    }
  }

  /** fsync off the event loop if anything was written since the last one. */
  async syncAsync(io: FileIo): Promise<void> {
    if (this.fd === null || !this.dirty) return;
    this.dirty = false;
    await io.fsync(this.fd);
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

  /** fsync (off the event loop) and close; returns the SHA-256 (hex). No append may be running. */
  async closeAsync(io: FileIo): Promise<string> {
    if (this.fd !== null) {
      const fd = this.fd;
      try {
        await this.syncAsync(io);
      } finally {
        this.fd = null;
        io.closeSync(fd);
      }
    }
    return this.sha256();
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
