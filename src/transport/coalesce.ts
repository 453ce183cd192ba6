// Writes a stream queued while its previous write was in flight reach the transport together
// (Writable's writev). Joining the small ones turns a backlog of many tiny chunks (keystrokes,
// short lines; a peer or a loop that fell behind) into one frame and one socket write, which is
// what a TLS record and a syscall per chunk cost otherwise. Large chunks are never copied.
/**
 * `chunks` in order, with runs of chunks joined while the run stays within `limit` bytes (one
 * copy of small data; a chunk of `limit` or more stays as it is).
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
    if (runBytes + c.length > limit) close();
    run.push(c);
    runBytes += c.length;
  }
  close();
  return out;
}
