// A micro-benchmark of deriving the asciicast from recorded bytes (src/recording/cast-batch.ts and
// the encoders), run by hand, not a test (no timing is asserted anywhere):
//
//   npx tsx bench/cast-micro.ts [--mib N] [--format v2|v3] [--only ascii,utf8,...] [--worker]
//
// For each kind of output it feeds N MiB (default 256) through one CastBatch as the recorder does
// (32 KiB chunks, 100 µs apart, so a cast event spans ~10 ms ≈ 3 MiB; the batch taken every
// 1 MiB) and prints the thread's CPU-seconds per GiB and the cast bytes per input byte. The CPU is
// this thread's only (process.cpuUsage on the main thread of an otherwise idle process), so the
// figure is what the work costs wherever it runs (on the relay's event loop or in a worker).
// --worker: the same batches through the recorder's path to the shared cast worker
// (cast-derivation.ts), where the text is also hashed (the channel SHA-256s): then the CPU is the
// whole process's (both threads), and "loop-s/GiB" is
// the CPU the calling thread (the relay's event loop) spent in the calls (queueing, the copy of the
// text, the hand-over), read while the worker is idle (each batch is awaited before the next).
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { AsciicastV2Encoder } from '../src/recording/asciicast-v2.js';
import { AsciicastV3Encoder } from '../src/recording/asciicast-v3.js';
import { CastBatch } from '../src/recording/cast-batch.js';
import { CastWorkerPool } from '../src/recording/cast-derivation.js';

const { values } = parseArgs({ options: { mib: { type: 'string', default: '256' }, format: { type: 'string', default: 'v2' }, only: { type: 'string' }, worker: { type: 'boolean', default: false } } });
const TOTAL = Number(values.mib) * 2 ** 20;
const CHUNK = 32 * 1024;
const BATCH = 2 ** 20;

/** `n` bytes of whole copies of `unit`, the rest spaces (no character is cut at a seam). */
function repeat(unit: Buffer, n: number): Buffer {
  const out = Buffer.alloc(n, 0x20);
  for (let off = 0; off + unit.length <= n; off += unit.length) unit.copy(out, off);
  return out;
}

function logLines(): Buffer {
  const lines: string[] = [];
  for (let i = 0; i < 2000; i++) lines.push(`2026-12-06T22:${String(i % 60).padStart(2, '0')}:00.123Z INFO request ${i} GET /api/v1/namespaces/default/pods?limit=500 200 "ok" 3.2ms\n`);
  return Buffer.from(lines.join(''), 'utf8');
}

function multiByte(): Buffer {
  const words = ['Привет, мир', '日本語のテキスト', 'Ελληνικά', 'emoji 🚀✨', 'naïve café', '中文字符测试', 'עברית'];
  let s = '';
  for (let i = 0; i < 20000; i++) s += words[i % words.length] + (i % 8 === 7 ? '\n' : ' ');
  return Buffer.from(s, 'utf8');
}

function ansiColoured(): Buffer {
  let s = '';
  for (let i = 0; i < 4000; i++) s += `\x1b[1;3${i % 8}mfile${i}.txt\x1b[0m\t\x1b[2K\r progress ${i}%\x07\n`;
  return Buffer.from(s, 'utf8');
}

/** Text with a NUL after every character: what UTF-16LE ASCII looks like (valid UTF-8). */
function nulInterleaved(): Buffer {
  const text = logLines();
  const out = Buffer.alloc(text.length * 2);
  for (let i = 0; i < text.length; i++) out[i * 2] = text[i]!;
  return out;
}

const KINDS: Record<string, () => Buffer> = {
  ascii: logLines,
  utf8: multiByte,
  ansi: ansiColoured,
  'nul-half': nulInterleaved,
  zeros: () => Buffer.alloc(1024 * 1024),
  random: () => randomBytes(4 * 1024 * 1024),
};

function run(unit: Buffer, total: number): { cpuPerGiB: number; castPerByte: number; wallPerGiB: number } {
  // One source buffer of 8 MiB cut into chunks; chunks are views, as the recorder's batch gives.
  const source = repeat(unit, 8 * 2 ** 20);
  const batch = new CastBatch(values.format === 'v3' ? new AsciicastV3Encoder() : new AsciicastV2Encoder(), 'ses_x.raw');
  batch.header({ cols: 80, rows: 24, extra: {} });
  batch.take();
  let castBytes = 0;
  let t = 0;
  let pending = 0;
  const cpu0 = process.cpuUsage();
  const wall0 = process.hrtime.bigint();
  for (let fed = 0; fed < total; fed += CHUNK) {
    const off = fed % source.length;
    batch.text('stdout', t, source.subarray(off, off + CHUNK));
    t += 100;
    pending += CHUNK;
    if (pending >= BATCH) {
      for (const b of batch.take()) castBytes += b.length;
      pending = 0;
    }
  }
  batch.endText(t);
  for (const b of batch.take()) castBytes += b.length;
  const cpu = process.cpuUsage(cpu0);
  const wall = Number(process.hrtime.bigint() - wall0) / 1e9;
  const gib = total / 2 ** 30;
  return { cpuPerGiB: (cpu.user + cpu.system) / 1e6 / gib, castPerByte: castBytes / total, wallPerGiB: wall / gib };
}

const pool = new CastWorkerPool();

/** The same feed through the shared worker, one batch at a time as the recorder sends them. */
async function runWorker(unit: Buffer, total: number): Promise<{ cpuPerGiB: number; castPerByte: number; loopPerGiB: number }> {
  const source = repeat(unit, 8 * 2 ** 20);
  const cast = pool.session(values.format === 'v3' ? 'v3' : 'v2', 'ses_x.raw');
  cast.header({ cols: 80, rows: 24, extra: {} });
  let castBytes = (await cast.take()).length;
  let t = 0;
  let pending = 0;
  let loopUs = 0;
  const cpu0 = process.cpuUsage();
  for (let fed = 0; fed < total; fed += CHUNK) {
    const off = fed % source.length;
    const c0 = process.cpuUsage();
    cast.text('stdout', t, source.subarray(off, off + CHUNK));
    t += 100;
    pending += CHUNK;
    let batch: Promise<Buffer> | undefined;
    if (pending >= BATCH) {
      batch = cast.take();
      pending = 0;
    }
    const c = process.cpuUsage(c0);
    loopUs += c.user + c.system;
    if (batch) castBytes += (await batch).length;
  }
  cast.endText(t);
  castBytes += (await cast.take()).length;
  cast.close();
  const cpu = process.cpuUsage(cpu0);
  const gib = total / 2 ** 30;
  return { cpuPerGiB: (cpu.user + cpu.system) / 1e6 / gib, castPerByte: castBytes / total, loopPerGiB: loopUs / 1e6 / gib };
}

const only = values.only ? values.only.split(',') : Object.keys(KINDS);
console.log(`cast derivation, ${values.mib} MiB per kind, ${values.format}, node ${process.version}`);
console.log(values.worker ? 'kind        CPU-s/GiB  loop-s/GiB  cast bytes/byte   (through the worker)' : 'kind        CPU-s/GiB  wall-s/GiB  cast bytes/byte');
for (const kind of only) {
  const make = KINDS[kind];
  if (!make) throw new Error(`unknown kind ${kind}; one of ${Object.keys(KINDS).join(', ')}`);
  const unit = make();
  if (values.worker) {
    await runWorker(unit, 32 * 2 ** 20); // warm-up (JIT, the thread's start)
    const r = await runWorker(unit, TOTAL);
    console.log(`${kind.padEnd(10)}  ${r.cpuPerGiB.toFixed(2).padStart(9)}  ${r.loopPerGiB.toFixed(2).padStart(10)}  ${r.castPerByte.toFixed(3).padStart(15)}`);
    continue;
  }
  run(unit, 32 * 2 ** 20); // warm-up (JIT)
  const r = run(unit, TOTAL);
  console.log(`${kind.padEnd(10)}  ${r.cpuPerGiB.toFixed(2).padStart(9)}  ${r.wallPerGiB.toFixed(2).padStart(10)}  ${r.castPerByte.toFixed(3).padStart(15)}`);
}
await pool.terminate();
