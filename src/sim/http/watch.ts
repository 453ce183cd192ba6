// Watch streams: newline-delimited JSON events over a chunked response, like kube-apiserver.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { KubeObject, ObjectStore, StoredEvent } from '../store.js';
import { toTable, type IncludeObject } from './table.js';

export interface WatchRequest {
  resource: string;
  namespace?: string;
  matches: (obj: KubeObject) => boolean;
  /** '' or '0': start with the current state as ADDED events. */
  resourceVersion: string;
  timeoutSeconds?: number;
  table?: { include: IncludeObject };
}

export function serveWatch(store: ObjectStore, req: IncomingMessage, res: ServerResponse, watch: WatchRequest): void {
  res.writeHead(200, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked', 'Cache-Control': 'no-cache, private' });
  res.flushHeaders();
  let columnsSent = false;
  const relevant = (e: StoredEvent) =>
    e.resource === watch.resource && (watch.namespace === undefined || e.object.metadata.namespace === watch.namespace) && watch.matches(e.object);

  const send = (type: string, object: KubeObject): void => {
    const payload = watch.table
      ? toTable(watch.resource, [object], watch.table.include, object.metadata.resourceVersion ?? '', !columnsSent)
      : object;
    columnsSent = true;
    res.write(`${JSON.stringify({ type, object: payload })}\n`);
  };

  // Subscribe first, so no change between the replay and the live feed is lost.
  const queued: StoredEvent[] = [];
  let live = false;
  const unsubscribe = store.subscribe((e) => {
    if (!relevant(e)) return;
    if (live) send(e.type, e.object);
    else queued.push(e);
  });

  let lastRv: number;
  if (watch.resourceVersion === '' || watch.resourceVersion === '0') {
    lastRv = store.currentResourceVersion;
    for (const obj of store.list(watch.resource, watch.namespace).filter(watch.matches)) send('ADDED', obj);
  } else {
    lastRv = Number(watch.resourceVersion);
    const past = Number.isFinite(lastRv) ? store.eventsSince(lastRv) : undefined;
    if (!past) {
      res.end(`${JSON.stringify({ type: 'ERROR', object: { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: `too old resource version: ${watch.resourceVersion}`, reason: 'Expired', code: 410 } })}\n`);
      unsubscribe();
      return;
    }
    for (const e of past.filter(relevant)) send(e.type, e.object);
    lastRv = store.currentResourceVersion;
  }
  for (const e of queued) if (e.rv > lastRv) send(e.type, e.object);
  live = true;

  const stop = (): void => {
    unsubscribe();
    clearTimeout(timer);
    if (!res.writableEnded) res.end();
  };
  const timer = setTimeout(stop, (watch.timeoutSeconds ?? 1800) * 1000);
  timer.unref();
  req.on('close', stop);
  res.on('close', stop);
}
