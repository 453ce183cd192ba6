// The cast worker's entry (a worker_threads thread shared by every session of the process, see
// cast-derivation.ts): one CastBatch per open session, each batch's calls applied in the order
// they come, the cast bytes handed back; and the session's channel SHA-256s, whose digests go back
// with the last batch. A failure is reported for that session only; a crash of
// the thread fails every open session (the client sees the exit).
import { parentPort } from 'node:worker_threads';
import type { CastBatch } from './cast-batch.js';
import { applyCastOps, newCastBatch, REUSED_TEXT_BUFFER, SpareBuffers, type FromCastWorker, type ToCastWorker } from './cast-ops.js';
import { ChannelHashes, type HashedChannel } from './raw-sidecar.js';

const port = parentPort;
if (!port) throw new Error('cast-worker.ts runs as a worker thread');
const sessions = new Map<number, { batch: CastBatch; hashes: ChannelHashes }>();
/**
 * Buffers of earlier casts the recorder wrote and handed back: a batch's cast is joined into one
 * (a new buffer per batch lived on the event loop until written, long enough for V8 to promote
 * it, and freed only by full GCs).
 */
const castSpares = new SpareBuffers();
const castBuffer = (bytes: number): Buffer => castSpares.take(bytes);

port.on('message', (m: ToCastWorker) => {
  if (m.kind === 'open') sessions.set(m.session, { batch: newCastBatch(m.format, m.rawName), hashes: new ChannelHashes() });
  else if (m.kind === 'drop') sessions.delete(m.session);
  else {
    for (const b of m.castSpares ?? []) castSpares.give(b);
    const s = sessions.get(m.session);
    let reply: FromCastWorker;
    try {
      if (!s) throw new Error('no such session in the cast worker');
      const cast = applyCastOps(s.batch, s.hashes, m.ops, m.data, castBuffer);
      // The text buffer goes back to be filled again (neither the cast nor a hash holds a view into it).
      const spare = m.data.buffer.byteLength >= REUSED_TEXT_BUFFER ? (m.data.buffer as ArrayBuffer) : undefined;
      reply = { kind: 'cast', session: m.session, cast, eventCount: s.batch.eventCount, ...(spare ? { spare } : {}), ...(m.final ? { digests: s.hashes.digests() as Record<HashedChannel, string> } : {}) };
    } catch (err) {
      sessions.delete(m.session);
      reply = { kind: 'failed', session: m.session, error: (err as Error).message };
    }
    // The cast's buffer owns its memory (SpareBuffers): handed over, not copied.
    const transfer: ArrayBuffer[] = [];
    if (reply.kind === 'cast') {
      if (reply.cast.length > 0) transfer.push(reply.cast.buffer as ArrayBuffer);
      if (reply.spare) transfer.push(reply.spare);
    }
    port.postMessage(reply, transfer);
  }
});
