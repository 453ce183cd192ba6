// In-memory object store with resource versions and a watch hub, like a tiny etcd + watch cache.
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';

export interface ObjectMeta {
  name: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  generateName?: string;
  [key: string]: unknown;
}

export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  [key: string]: unknown;
}

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface StoredEvent {
  type: WatchEventType;
  resource: string;
  object: KubeObject;
  /** numeric resource version of this change */
  rv: number;
}

/** How many past changes a watch may resume from; older resource versions get 410 Gone. */
const HISTORY = 2000;

export class ObjectStore {
  private readonly objects = new Map<string, KubeObject>();
  private readonly history: StoredEvent[] = [];
  private readonly hub = new EventEmitter();
  private rv = 1000;

  constructor() {
    this.hub.setMaxListeners(0);
  }

  get currentResourceVersion(): number {
    return this.rv;
  }

  /** The oldest resource version a watch can still start from. */
  get oldestResumableVersion(): number {
    return this.history[0]?.rv ?? this.rv;
  }

  private key(resource: string, namespace: string | undefined, name: string): string {
    return `${resource}/${namespace ?? ''}/${name}`;
  }

  get(resource: string, namespace: string | undefined, name: string): KubeObject | undefined {
    const obj = this.objects.get(this.key(resource, namespace, name));
    return obj && structuredClone(obj);
  }

  list(resource: string, namespace?: string): KubeObject[] {
    const prefix = `${resource}/`;
    const out: KubeObject[] = [];
    for (const [key, obj] of this.objects) {
      if (!key.startsWith(prefix)) continue;
      if (namespace !== undefined && obj.metadata.namespace !== namespace) continue;
      out.push(structuredClone(obj));
    }
    return out.sort((a, b) =>
      `${a.metadata.namespace ?? ''}/${a.metadata.name}`.localeCompare(`${b.metadata.namespace ?? ''}/${b.metadata.name}`),
    );
  }

  /** Inserts a new object; returns undefined if it already exists. */
  create(resource: string, obj: KubeObject): KubeObject | undefined {
    const key = this.key(resource, obj.metadata.namespace, obj.metadata.name);
    if (this.objects.has(key)) return undefined;
    const stored = structuredClone(obj);
    stored.metadata.uid ??= randomUUID();
    stored.metadata.creationTimestamp ??= new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    return this.commit('ADDED', resource, key, stored);
  }

  /** Replaces an existing object (used for status changes); undefined if absent. */
  update(resource: string, obj: KubeObject): KubeObject | undefined {
    const key = this.key(resource, obj.metadata.namespace, obj.metadata.name);
    if (!this.objects.has(key)) return undefined;
    return this.commit('MODIFIED', resource, key, structuredClone(obj));
  }

  delete(resource: string, namespace: string | undefined, name: string): KubeObject | undefined {
    const key = this.key(resource, namespace, name);
    const existing = this.objects.get(key);
    if (!existing) return undefined;
    existing.metadata.deletionTimestamp ??= new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    return this.commit('DELETED', resource, key, existing);
  }

  private commit(type: WatchEventType, resource: string, key: string, obj: KubeObject): KubeObject {
    this.rv += 1;
    obj.metadata.resourceVersion = String(this.rv);
    if (type === 'DELETED') this.objects.delete(key);
    else this.objects.set(key, obj);
    const event: StoredEvent = { type, resource, object: structuredClone(obj), rv: this.rv };
    this.history.push(event);
    if (this.history.length > HISTORY) this.history.shift();
    this.hub.emit('change', event);
    return structuredClone(obj);
  }

  /** Events after `sinceRv` still in history, or undefined if that version is too old. */
  eventsSince(sinceRv: number): StoredEvent[] | undefined {
    if (sinceRv < this.oldestResumableVersion - 1 && this.history.length >= HISTORY) return undefined;
    return this.history.filter((e) => e.rv > sinceRv).map((e) => structuredClone(e));
  }

  subscribe(listener: (event: StoredEvent) => void): () => void {
    this.hub.on('change', listener);
    return () => this.hub.off('change', listener);
  }
}
