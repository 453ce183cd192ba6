// Writes a stream queued while its previous write was in flight reach the transport together
// (Writable's writev). Joining the small ones turns a backlog of many tiny chunks (keystrokes,
// short lines; a peer or a loop that fell behind) into one frame and one socket write, which is
// what a TLS record and a syscall per chunk cost otherwise. Large chunks are never copied.
/** A chunk this large already fills a frame well; joining it would only copy it. */
export const SMALL_CHUNK_BYTES = 4096;

/**
 * `chunks` in order, with runs of small chunks (under SMALL_CHUNK_BYTES) joined while the run
 * stays within `limit` bytes: one copy of small data only; a larger chunk is never copied.
 */
export function joinSmall(chunks: readonly Buffer[], limit: number): Buffer[] {
  if (chunks.length <= 1) return [...chunks];
  const out: Buffer[] = [];
  let run: Buffer[] = [];
  let runBytes = 0;
  const close = (): void => {
    if (run.length === 1) out.push(run[0]!);
    else if (run.length > 1) out.push(Buffer.concat(run, runBytes));
    run = [];
    runBytes = 0;
  };
  for (const c of chunks) {
    if (c.length === 0) continue;
    if (c.length >= SMALL_CHUNK_BYTES) {
      close();
      out.push(c);
      continue;
    }
    if (runBytes + c.length > limit) close();
    run.push(c);
    runBytes += c.length;
  }
  close();
  return out;
}
