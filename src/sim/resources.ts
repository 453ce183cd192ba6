// The resource kinds the simulated cluster serves (core/v1 only), for routing and discovery.

export interface ResourceDef {
  /** plural, as in the URL */
  name: string;
  singularName: string;
  kind: string;
  namespaced: boolean;
  shortNames: string[];
  verbs: string[];
}

const CRUD = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'];

export const RESOURCES: readonly ResourceDef[] = [
  { name: 'namespaces', singularName: 'namespace', kind: 'Namespace', namespaced: false, shortNames: ['ns'], verbs: CRUD },
  { name: 'pods', singularName: 'pod', kind: 'Pod', namespaced: true, shortNames: ['po'], verbs: CRUD },
  { name: 'secrets', singularName: 'secret', kind: 'Secret', namespaced: true, shortNames: [], verbs: CRUD },
  { name: 'configmaps', singularName: 'configmap', kind: 'ConfigMap', namespaced: true, shortNames: ['cm'], verbs: CRUD },
];

/** Subresources of pods, listed in discovery. */
export const POD_SUBRESOURCES = [
  { name: 'pods/exec', kind: 'PodExecOptions', verbs: ['create', 'get'] },
  { name: 'pods/attach', kind: 'PodAttachOptions', verbs: ['create', 'get'] },
  { name: 'pods/portforward', kind: 'PodPortForwardOptions', verbs: ['create', 'get'] },
  { name: 'pods/ephemeralcontainers', kind: 'Pod', verbs: ['get', 'patch', 'update'] },
  { name: 'pods/log', kind: 'Pod', verbs: ['get'] },
  { name: 'pods/status', kind: 'Pod', verbs: ['get'] },
] as const;

export function resourceByName(name: string): ResourceDef | undefined {
  return RESOURCES.find((r) => r.name === name);
}
