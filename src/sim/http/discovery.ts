// /version and legacy discovery documents. Aggregated discovery is not offered: kubectl then falls
// back to /api/v1, which every version handles.
import { POD_SUBRESOURCES, RESOURCES } from '../resources.js';

export const SIM_VERSION = {
  major: '1',
  minor: '33',
  gitVersion: 'v1.33.1-sim',
  gitCommit: '0000000000000000000000000000000000000000',
  gitTreeState: 'clean',
  buildDate: '2025-05-15T00:00:00Z',
  goVersion: 'go1.24.2',
  compiler: 'gc',
  platform: 'linux/amd64',
};

export function apiVersions(serverAddress: string): unknown {
  return {
    kind: 'APIVersions',
    versions: ['v1'],
    serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress }],
  };
}

export function apiGroupList(groups: unknown[] = []): unknown {
  return { kind: 'APIGroupList', apiVersion: 'v1', groups };
}

export function coreV1Resources(): unknown {
  return {
    kind: 'APIResourceList',
    groupVersion: 'v1',
    resources: [
      ...RESOURCES.map((r) => ({
        name: r.name,
        singularName: r.singularName,
        namespaced: r.namespaced,
        kind: r.kind,
        verbs: r.verbs,
        ...(r.shortNames.length ? { shortNames: r.shortNames } : {}),
        ...(r.name === 'pods' ? { categories: ['all'] } : {}),
      })),
      ...POD_SUBRESOURCES.map((s) => ({ name: s.name, singularName: '', namespaced: true, kind: s.kind, verbs: s.verbs })),
    ],
  };
}
