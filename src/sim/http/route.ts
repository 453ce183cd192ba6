// Maps a core/v1 URL path to what it addresses.
import { resourceByName, type ResourceDef } from '../resources.js';

export interface SimRoute {
  resource: ResourceDef;
  /** undefined for cluster-scoped requests and for lists across all namespaces */
  namespace?: string;
  name?: string;
  subresource?: string;
}

/** Returns undefined for paths outside the served core/v1 resources. */
export function routeCoreV1(pathname: string): SimRoute | undefined {
  if (!pathname.startsWith('/api/v1/')) return undefined;
  const parts = pathname.slice('/api/v1/'.length).split('/').map(decodeURIComponent);
  if (parts.some((p) => p === '')) return undefined;
  let namespace: string | undefined;
  if (parts[0] === 'namespaces' && parts.length >= 3) {
    namespace = parts[1];
    parts.splice(0, 2);
  }
  const [resourceName, name, subresource, ...rest] = parts;
  if (rest.length > 0 || resourceName === undefined) return undefined;
  const resource = resourceByName(resourceName);
  if (!resource) return undefined;
  if (namespace !== undefined && !resource.namespaced) return undefined;
  if (namespace === undefined && resource.namespaced && name !== undefined) return undefined;
  // `/api/v1/namespaces/NAME` addresses the namespace object itself.
  return { resource, namespace, name, subresource };
}

/** `/api/v1/namespaces/demo` is parsed by routeCoreV1 as resource=namespaces, name=demo. */
