// meta.k8s.io/v1 Table responses: what `kubectl get` asks for (server-side printing).
import type { KubeObject } from '../store.js';

interface Column {
  name: string;
  type: string;
  format?: string;
  description: string;
  priority: number;
}

/** Age the way kubectl shows it (a simplified HumanDuration). */
export function humanAge(since: string | undefined, now = Date.now()): string {
  if (!since) return '<unknown>';
  const s = Math.max(0, Math.floor((now - Date.parse(since)) / 1000));
  if (s < 120) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 10) return `${m}m${s % 60}s`;
  if (m < 180) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 8) return `${h}h${m % 60}m`;
  if (h < 48) return `${h}h`;
  return `${Math.floor(h / 24)}d`;
}

const NAME: Column = { name: 'Name', type: 'string', format: 'name', description: 'Name must be unique within a namespace.', priority: 0 };
const AGE: Column = { name: 'Age', type: 'string', description: 'Time since creation.', priority: 0 };

interface Printer {
  columns: Column[];
  cells(obj: KubeObject): unknown[];
}

const PRINTERS: Record<string, Printer> = {
  pods: {
    columns: [
      NAME,
      { name: 'Ready', type: 'string', description: 'Ready containers / total', priority: 0 },
      { name: 'Status', type: 'string', description: 'Pod phase', priority: 0 },
      { name: 'Restarts', type: 'string', description: 'Container restarts', priority: 0 },
      AGE,
      { name: 'IP', type: 'string', description: 'Pod IP', priority: 1 },
      { name: 'Node', type: 'string', description: 'Node', priority: 1 },
    ],
    cells(obj) {
      const status = (obj.status ?? {}) as { phase?: string; podIP?: string; containerStatuses?: Array<{ ready: boolean; restartCount: number }> };
      const cs = status.containerStatuses ?? [];
      return [
        obj.metadata.name,
        `${cs.filter((c) => c.ready).length}/${cs.length}`,
        obj.metadata.deletionTimestamp ? 'Terminating' : (status.phase ?? 'Unknown'),
        String(cs.reduce((n, c) => n + c.restartCount, 0)),
        humanAge(obj.metadata.creationTimestamp),
        status.podIP ?? '<none>',
        'sim-node',
      ];
    },
  },
  namespaces: {
    columns: [NAME, { name: 'Status', type: 'string', description: 'Phase', priority: 0 }, AGE],
    cells: (obj) => [obj.metadata.name, (obj.status as { phase?: string } | undefined)?.phase ?? 'Active', humanAge(obj.metadata.creationTimestamp)],
  },
  secrets: {
    columns: [NAME, { name: 'Type', type: 'string', description: 'Secret type', priority: 0 }, { name: 'Data', type: 'string', description: 'Keys', priority: 0 }, AGE],
    cells: (obj) => [obj.metadata.name, (obj.type as string | undefined) ?? 'Opaque', String(Object.keys((obj.data as object | undefined) ?? {}).length), humanAge(obj.metadata.creationTimestamp)],
  },
  configmaps: {
    columns: [NAME, { name: 'Data', type: 'string', description: 'Keys', priority: 0 }, AGE],
    cells: (obj) => [obj.metadata.name, String(Object.keys((obj.data as object | undefined) ?? {}).length + Object.keys((obj.binaryData as object | undefined) ?? {}).length), humanAge(obj.metadata.creationTimestamp)],
  },
};

export type IncludeObject = 'None' | 'Metadata' | 'Object';

export function wantsTable(accept: string | undefined): boolean {
  return accept !== undefined && /(^|[;,\s])as=Table/.test(accept);
}

function rowObject(obj: KubeObject, include: IncludeObject): unknown {
  if (include === 'None') return undefined;
  if (include === 'Object') return obj;
  return { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: obj.metadata };
}

export function toTable(resource: string, objects: KubeObject[], include: IncludeObject, resourceVersion: string, withColumns = true): unknown {
  const printer = PRINTERS[resource]!;
  return {
    kind: 'Table',
    apiVersion: 'meta.k8s.io/v1',
    metadata: { resourceVersion },
    ...(withColumns ? { columnDefinitions: printer.columns } : {}),
    rows: objects.map((obj) => ({ cells: printer.cells(obj), object: rowObject(obj, include) })),
  };
}
