// The cast worker's entry (a worker_threads thread shared by every session of the process, see
// cast-derivation.ts): one CastBatch per open session, each batch's calls applied in the order
// they come, the cast bytes handed back. A failure is reported for that session only; a crash of
// the thread fails every open session (the client sees the exit).
import { parentPort } from 'node:worker_threads';
import type { CastBatch } from './cast-batch.js';
import { applyCastOps, newCastBatch, REUSED_TEXT_BUFFER, type FromCastWorker, type ToCastWorker } from './cast-ops.js';

const port = parentPort;
if (!port) throw new Error('cast-worker.ts runs as a worker thread');
const sessions = new Map<number, CastBatch>();

port.on('message', (m: ToCastWorker) => {
  if (m.kind === 'open') sessions.set(m.session, newCastBatch(m.format, m.rawName));
  else if (m.kind === 'drop') sessions.delete(m.session);
  else {
    const batch = sessions.get(m.session);
    let reply: FromCastWorker;
    try {
      if (!batch) throw new Error('no such session in the cast worker');
      const cast = applyCastOps(batch, m.ops, m.data);
      // The text buffer goes back to be filled again (the cast holds no view into it).
      const spare = m.data.buffer.byteLength >= REUSED_TEXT_BUFFER ? (m.data.buffer as ArrayBuffer) : undefined;
      reply = { kind: 'cast', session: m.session, cast, eventCount: batch.eventCount, ...(spare ? { spare } : {}) };
    } catch (err) {
      sessions.delete(m.session);
      reply = { kind: 'failed', session: m.session, error: (err as Error).message };
    }
    // A buffer that owns its memory is handed over; a view into a pool is copied.
    const transfer: ArrayBuffer[] = [];
    if (reply.kind === 'cast') {
      if (reply.cast.byteOffset === 0 && reply.cast.buffer.byteLength === reply.cast.byteLength) transfer.push(reply.cast.buffer as ArrayBuffer);
      if (reply.spare) transfer.push(reply.spare);
    }
    port.postMessage(reply, transfer);
  }
});
