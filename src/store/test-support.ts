// Test helpers for src/store (excluded from the build). Also a child-process entry point: the
// concurrency test runs this file in separate processes, each appending to the same database.
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { openStore } from './index.js';

/** A fresh temporary data dir and a function that removes it. */
export function tempDataDir(): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'kb-store-'));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

const SELF = fileURLToPath(import.meta.url);

/**
 * Starts `count` processes that each open the store in `dataDir` and, once all are ready, append
 * `rows` audit events as fast as they can. Resolves when all have finished.
 */
export async function concurrentAppenders(dataDir: string, count: number, rows: number): Promise<void> {
  const children = Array.from({ length: count }, (_, i) =>
    fork(SELF, [dataDir, String(rows), `w${i}`], {
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    }),
  );
  const exited = children.map(
    (c) =>
      new Promise<void>((resolve, reject) => {
        c.on('error', reject);
        c.on('exit', (code, signal) =>
          code === 0 ? resolve() : reject(new Error(`appender exited with ${code ?? signal}`)),
        );
      }),
  );
  // Start together, so the appends really interleave.
  await Promise.all(
    children.map((c) => new Promise<void>((resolve) => c.once('message', (m) => m === 'ready' && resolve()))),
  );
  for (const c of children) c.send('go');
  await Promise.all(exited);
}

async function appenderMain(dataDir: string, rows: number, label: string): Promise<void> {
  const store = openStore(dataDir, { busyTimeoutMs: 60_000, synchronous: 'NORMAL' });
  await new Promise<void>((resolve) => {
    process.once('message', () => resolve());
    process.send!('ready');
  });
  for (let i = 0; i < rows; i++) {
    // Yield to the event loop now and then: a process that never pauses keeps re-taking the write
    // lock before the other's busy handler wakes, and the appends would barely interleave.
    if (i % 4 === 0) await new Promise((resolve) => setTimeout(resolve, 1));
    await store.audit.append({
      event: 'request',
      source: `${label}:${i}`,
      method: 'GET',
      path: '/api/v1/pods',
      details: { worker: label, i },
    });
  }
  await store.close();
  process.disconnect();
}

if (process.argv[1] && pathToFileURL(process.argv[1]).href === import.meta.url) {
  const [dataDir, rows, label] = process.argv.slice(2);
  appenderMain(dataDir!, Number(rows), label!).catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
