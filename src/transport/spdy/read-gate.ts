// Pauses reading from the socket while anything downstream is full. SPDY as kubectl speaks it has
// no flow control, so the only brake is TCP: if a stream's reader is slow we stop reading the
// socket, the kernel buffers fill and the peer's writes block.
import type { Readable } from 'node:stream';

export class ReadGate {
  private readonly holds = new Set<unknown>();

  constructor(private readonly source: Readable) {}

  /** Stops reading until `reason` is released (several reasons may hold at once). */
  hold(reason: unknown): void {
    if (this.holds.has(reason)) return;
    this.holds.add(reason);
    if (this.holds.size === 1) this.source.pause();
  }

  release(reason: unknown): void {
    if (!this.holds.delete(reason)) return;
    if (this.holds.size === 0 && !this.source.destroyed) this.source.resume();
  }

  /** Drops every hold and reads again (used once input is only being drained and discarded). */
  clear(): void {
    const wasHeld = this.holds.size > 0;
    this.holds.clear();
    if (wasHeld && !this.source.destroyed) this.source.resume();
  }

  get paused(): boolean {
    return this.holds.size > 0;
  }
}
