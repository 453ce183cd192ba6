// The cast is derived off the relay's event loop: every session's CastBatch lives in ONE worker
// thread shared by the whole process (cast-worker.ts; a thread per session would cost megabytes
// each). The recorder calls a session's CastDerivation as it would a CastBatch; the calls are only
// queued, and take() sends them with the batch's text bytes (copied once into a buffer that is
// handed over, not cloned) and resolves with the cast bytes to write. Replies come in the order
// the batches were sent. The thread also hashes each channel's bytes (the text it gets anyway, and
// the bytes hash() hands it in the same buffer), so the channel SHA-256s cost the relay's loop
// nothing; finish() sends the last batch and resolves with the digests too. If the thread fails or exits, every take() of every session it held
// rejects (those recordings fail and their sessions are cut); the next session starts a new thread.
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { TextChannel } from './cast-batch.js';
import { REUSED_TEXT_BUFFER, SpareBuffers, type CastOp, type FromCastWorker, type ToCastWorker } from './cast-ops.js';
import type { CastFormat, CastHeader, EventCode } from './events.js';
import type { HashedChannel } from './raw-sidecar.js';
import { diskProgressed } from './disk-progress.js';

/** What the worker answers for a batch: its cast bytes, and after the last batch the channel digests. */
export interface Derived {
  cast: Buffer;
  digests?: Record<HashedChannel, string>;
}

interface Waiter {
  resolve(d: Derived): void;
  reject(err: Error): void;
}

interface Open {
  waiters: Waiter[];
  eventCount: number;
  failure: string | undefined;
}

/** Starts the worker: the built .js, or the .ts through tsx's loader when running from the sources (tests, the bench). */
function startWorker(): Worker {
  const self = import.meta.url;
  if (!self.endsWith('.ts')) return new Worker(new URL('./cast-worker.js', self));
  const tsx = pathToFileURL(createRequire(self).resolve('tsx/esm/api').replace(/\.cjs$/, '.mjs')).href;
  const entry = new URL('./cast-worker.ts', self).href;
  const code = `import { register } from ${JSON.stringify(tsx)}; register(); await import(${JSON.stringify(entry)});`;
  return new Worker(new URL(`data:text/javascript,${encodeURIComponent(code)}`));
}

export class CastWorkerPool {
  private worker: Worker | undefined;
  private readonly open = new Map<number, Open>();
  private nextId = 1;
  private outstanding = 0;
  /** Text buffers handed back by the thread, to be filled again (a few, shared by all sessions). */
  private readonly spares = new SpareBuffers();
  /** Cast buffers written by their recorders, to go back to the thread with the next batch. */
  private castSpares: ArrayBuffer[] = [];

  /** @internal A cast the thread made, written now and read by nothing: its buffer goes back to be filled again. */
  recycleCast(cast: Buffer): void {
    const ab = cast.buffer as ArrayBuffer;
    // Once only: a buffer listed twice in one transfer fails the whole message.
    if (ab.byteLength >= REUSED_TEXT_BUFFER && this.castSpares.length < 4 && !this.castSpares.includes(ab)) this.castSpares.push(ab);
  }

  /** @internal A buffer for `bytes` of a batch's text: a spare when it is large, else a new one. */
  textBuffer(bytes: number): Buffer {
    return this.spares.take(bytes);
  }

  /** A session's derivation; `rawName` names the sidecar in binary markers. */
  session(format: CastFormat, rawName: string): CastDerivation {
    const worker = this.ensure();
    const id = this.nextId++;
    const state: Open = { waiters: [], eventCount: 0, failure: undefined };
    this.open.set(id, state);
    this.post(worker, { kind: 'open', session: id, format, rawName });
    return new CastDerivation(this, id, state);
  }

  /** Starts the thread now (the bastion's start), so that the first session does not wait for it. */
  start(): void {
    this.ensure();
  }

  /** Stops the thread (tests: a worker that dies mid-session); open sessions fail. */
  async terminate(): Promise<void> {
    const w = this.worker;
    if (w) await w.terminate();
  }

  /** @internal */
  send(id: number, state: Open, ops: CastOp[], data: Buffer, final = false): Promise<Derived> {
    if (state.failure !== undefined) return Promise.reject(new Error(state.failure));
    const worker = this.worker;
    if (!worker) return Promise.reject(new Error('the cast worker is not running'));
    return new Promise((resolve, reject) => {
      state.waiters.push({ resolve, reject });
      if (this.outstanding++ === 0) worker.ref();
      const castSpares = this.castSpares;
      this.castSpares = [];
      const msg: ToCastWorker = { kind: 'derive', session: id, ops, data, ...(final ? { final } : {}), ...(castSpares.length > 0 ? { castSpares } : {}) };
      this.post(worker, msg, [...(data.byteLength > 0 ? [data.buffer as ArrayBuffer] : []), ...castSpares]);
    });
  }

  /** @internal */
  drop(id: number): void {
    if (!this.open.delete(id)) return;
    if (this.worker) this.post(this.worker, { kind: 'drop', session: id });
  }

  private post(worker: Worker, msg: ToCastWorker, transfer: ArrayBuffer[] = []): void {
    worker.postMessage(msg, transfer);
  }

  private ensure(): Worker {
    if (this.worker) return this.worker;
    const worker = startWorker();
    // A batch's write waits for its cast: the worker starting and answering is the recording
    // making progress, as a completed write is (a starved machine is not a hung disk).
    worker.on('online', diskProgressed);
    worker.on('message', (m: FromCastWorker) => {
      diskProgressed();
      this.reply(m);
    });
    worker.on('error', (err) => this.lost(worker, `the cast worker failed: ${err.message}`));
    worker.on('exit', (code) => this.lost(worker, `the cast worker exited (code ${code})`));
    // Referenced only while a batch is out (see send), so an idle thread never keeps the process
    // alive. After the listeners: adding a 'message' listener references the worker's port again.
    worker.unref();
    this.worker = worker;
    return worker;
  }

  private reply(m: FromCastWorker): void {
    const state = this.open.get(m.session);
    const waiter = state?.waiters.shift();
    if (--this.outstanding === 0) this.worker?.unref();
    if (!state || !waiter) return;
    if (m.kind === 'failed') {
      state.failure = `the cast could not be derived: ${m.error}`;
      return waiter.reject(new Error(state.failure));
    }
    if (m.spare) this.spares.give(m.spare);
    state.eventCount = m.eventCount;
    const cast = Buffer.from(m.cast.buffer, m.cast.byteOffset, m.cast.byteLength);
    waiter.resolve(m.digests ? { cast, digests: m.digests } : { cast });
  }

  /** The thread is gone: every session it held fails, now or at its next take(). */
  private lost(worker: Worker, why: string): void {
    if (this.worker !== worker) return;
    this.worker = undefined;
    this.outstanding = 0;
    for (const [id, state] of this.open) {
      state.failure = why;
      for (const w of state.waiters.splice(0)) w.reject(new Error(why));
      this.open.delete(id);
    }
  }
}

/** One session's cast, derived in the worker: CastBatch's calls, queued until take(). */
export class CastDerivation {
  private ops: CastOp[] = [];
  private texts: Buffer[] = [];
  private textBytes = 0;

  constructor(
    private readonly pool: CastWorkerPool,
    private readonly id: number,
    private readonly state: Open,
  ) {}

  header(header: CastHeader): void {
    this.ops.push({ op: 'header', header });
  }

  /** `data` may be a view into the recorder's batch: it is copied at take(), before that is written. */
  text(channel: TextChannel, timeUs: number, data: Buffer): void {
    this.ops.push({ op: 'text', channel, timeUs, offset: this.textBytes, length: data.length });
    this.texts.push(data);
    this.textBytes += data.length;
  }

  event(timeUs: number, code: EventCode, data: string): void {
    this.ops.push({ op: 'event', timeUs, code, data });
  }

  /** Bytes of `channel` that are not cast text, hashed in the worker in order with its text (copied at take(), like text). */
  hash(channel: HashedChannel, data: Buffer): void {
    if (data.length === 0) return;
    this.ops.push({ op: 'hash', channel, offset: this.textBytes, length: data.length });
    this.texts.push(data);
    this.textBytes += data.length;
  }

  endText(timeUs: number): void {
    this.ops.push({ op: 'endText', timeUs });
  }

  /** Calls are queued since the last take(). */
  get queued(): boolean {
    return this.ops.length > 0;
  }

  /** Events written by the worker so far (as of the last take that resolved). */
  get eventCount(): number {
    return this.state.eventCount;
  }

  /** Sends the queued calls; resolves with the cast bytes they make (rejects if the worker failed). */
  take(): Promise<Buffer> {
    if (this.ops.length === 0) return Promise.resolve(Buffer.alloc(0));
    return this.send(false).then((d) => d.cast);
  }

  /**
   * Sends the last batch (maybe empty); resolves with its cast bytes and the SHA-256 (hex) of every
   * byte of each hashed channel sent since the start (`omit`: left out); rejects if the worker failed.
   */
  async finish(omit: readonly HashedChannel[] = []): Promise<{ cast: Buffer; digests: Record<string, string> }> {
    const d = await this.send(true);
    if (!d.digests) throw new Error('the cast worker sent no channel digests');
    const digests: Record<string, string> = { ...d.digests };
    for (const name of omit) delete digests[name];
    return { cast: d.cast, digests };
  }

  private send(final: boolean): Promise<Derived> {
    const ops = this.ops;
    const data = this.pool.textBuffer(this.textBytes);
    let at = 0;
    for (const t of this.texts) {
      data.set(t, at);
      at += t.length;
    }
    this.ops = [];
    this.texts = [];
    this.textBytes = 0;
    return this.pool.send(this.id, this.state, ops, data, final);
  }

  /** `cast` (from take or finish) is written and nothing reads it any more: its buffer may be filled again. */
  recycle(cast: Buffer): void {
    this.pool.recycleCast(cast);
  }

  /** The session is over (or failed): the worker forgets it. */
  close(): void {
    this.pool.drop(this.id);
  }
}

let shared: CastWorkerPool | undefined;

/** The process's one cast worker (started with the first recorded session). */
export function sharedCastWorker(): CastWorkerPool {
  shared ??= new CastWorkerPool();
  return shared;
}
