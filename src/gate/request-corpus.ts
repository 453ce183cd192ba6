// Table of request-targets and what parseKubeRequest must make of them: the exact parse, or the exact
// refusal reason. Used by request.test.ts (table test, apiserver-differential test, and as seeds for the
// mutation property test).
import type { ParseRefusalReason } from './request.js';
import type { ResourceVerb, StreamOperation } from './types.js';

export interface ResourceExpectation {
  kind: 'resource';
  verb: ResourceVerb;
  apiGroup: string;
  apiVersion: string;
  resource: string;
  subresource: string;
  namespace: string;
  name: string;
  proxyPath: string;
  stream: StreamOperation | undefined;
}

export interface NonResourceExpectation {
  kind: 'nonResource';
  verb: string;
}

export type CorpusCase =
  | { method: string; url: string; expect: ResourceExpectation | NonResourceExpectation; note?: string }
  | { method: string; url: string; refuse: ParseRefusalReason; note?: string };

interface ResOpts {
  group?: string;
  version?: string;
  ns?: string;
  name?: string;
  sub?: string;
  proxyPath?: string;
  stream?: StreamOperation;
}

function res(verb: ResourceVerb, resource: string, o: ResOpts = {}): ResourceExpectation {
  return {
    kind: 'resource',
    verb,
    apiGroup: o.group ?? '',
    apiVersion: o.version ?? 'v1',
    resource,
    subresource: o.sub ?? '',
    namespace: o.ns ?? '',
    name: o.name ?? '',
    proxyPath: o.proxyPath ?? '',
    stream: o.stream,
  };
}

function nonRes(verb = 'get'): NonResourceExpectation {
  return { kind: 'nonResource', verb };
}

const POD = '/api/v1/namespaces/demo/pods/web';

/** The exec URL kubectl sent in protocol.md §1 (kubectl exec annotated -- echo 'a&b=c' '/x?y#z' '%41' 'ü' '' 'two  spaces'). */
export const KUBECTL_EXEC_QUERY =
  'command=echo&command=a%26b%3Dc&command=%2Fx%3Fy%23z&command=%2541&command=%C3%BC&command=&command=two++spaces&container=sidecar&stderr=true&stdout=true';
export const KUBECTL_EXEC_ARGV = ['echo', 'a&b=c', '/x?y#z', '%41', 'ü', '', 'two  spaces'];
/** The exec URL @kubernetes/client-node sends (protocol.md §1). */
export const CLIENT_NODE_EXEC_QUERY = 'stdout=true&stderr=true&stdin=false&tty=false&command=echo&command=hi%20there&container=only';

export const CORPUS: CorpusCase[] = [
  // --- core REST verbs -------------------------------------------------------------------------
  { method: 'GET', url: '/api/v1/namespaces/demo/pods', expect: res('list', 'pods', { ns: 'demo' }) },
  { method: 'GET', url: '/api/v1/pods', expect: res('list', 'pods') },
  { method: 'GET', url: POD, expect: res('get', 'pods', { ns: 'demo', name: 'web' }) },
  { method: 'HEAD', url: POD, expect: res('get', 'pods', { ns: 'demo', name: 'web' }) },
  { method: 'POST', url: '/api/v1/namespaces/demo/pods?fieldManager=kubectl-create', expect: res('create', 'pods', { ns: 'demo' }) },
  { method: 'PUT', url: POD, expect: res('update', 'pods', { ns: 'demo', name: 'web' }) },
  { method: 'PATCH', url: `${POD}?fieldManager=kubectl-edit`, expect: res('patch', 'pods', { ns: 'demo', name: 'web' }) },
  { method: 'DELETE', url: POD, expect: res('delete', 'pods', { ns: 'demo', name: 'web' }) },
  { method: 'DELETE', url: '/api/v1/namespaces/demo/pods?labelSelector=app%3Dweb', expect: res('deletecollection', 'pods', { ns: 'demo' }) },
  { method: 'DELETE', url: '/api/v1/nodes', expect: res('deletecollection', 'nodes') },
  { method: 'GET', url: '/api/v1/nodes/node-1', expect: res('get', 'nodes', { name: 'node-1' }) },
  { method: 'GET', url: '/api/v1/namespaces/demo/configmaps/kube-root-ca.crt', expect: res('get', 'configmaps', { ns: 'demo', name: 'kube-root-ca.crt' }) },
  { method: 'POST', url: POD, refuse: 'method-not-allowed', note: 'create posts to the collection' },
  { method: 'PUT', url: '/api/v1/namespaces/demo/pods', refuse: 'method-not-allowed' },
  { method: 'PATCH', url: '/api/v1/namespaces/demo/pods', refuse: 'method-not-allowed' },
  { method: 'OPTIONS', url: '/api/v1/pods', refuse: 'method-not-allowed' },
  { method: 'TRACE', url: '/api/v1/pods', refuse: 'method-not-allowed' },
  { method: 'CONNECT', url: '/api/v1/pods', refuse: 'method-not-allowed' },
  { method: 'get', url: '/api/v1/pods', refuse: 'method-not-allowed' },

  // --- watch, both ways -------------------------------------------------------------------------
  { method: 'GET', url: '/api/v1/namespaces/demo/pods?watch=true&resourceVersion=10', expect: res('watch', 'pods', { ns: 'demo' }) },
  { method: 'GET', url: '/api/v1/namespaces/demo/pods?watch=1', expect: res('watch', 'pods', { ns: 'demo' }) },
  { method: 'HEAD', url: '/api/v1/pods?watch=true', expect: res('watch', 'pods') },
  { method: 'GET', url: '/api/v1/namespaces/demo/pods?watch=false', expect: res('list', 'pods', { ns: 'demo' }) },
  { method: 'GET', url: '/api/v1/namespaces/demo/pods?watch=0&limit=500', expect: res('list', 'pods', { ns: 'demo' }) },
  {
    method: 'GET',
    url: '/api/v1/namespaces/demo/pods?fieldSelector=metadata.name%3Dweb&watch=true',
    expect: res('watch', 'pods', { ns: 'demo' }),
    note: 'kubectl get pod web -w; the name stays empty (collection)',
  },
  { method: 'GET', url: '/api/v1/watch/namespaces/demo/pods', expect: res('watch', 'pods', { ns: 'demo' }) },
  { method: 'GET', url: '/api/v1/watch/pods', expect: res('watch', 'pods') },
  { method: 'GET', url: '/api/v1/watch/namespaces/demo/pods/web', expect: res('watch', 'pods', { ns: 'demo', name: 'web' }) },
  { method: 'GET', url: '/api/v1/watch/namespaces', expect: res('watch', 'namespaces') },
  { method: 'GET', url: '/api/v1/watch/namespaces/demo', expect: res('watch', 'namespaces', { ns: 'demo', name: 'demo' }) },
  {
    method: 'GET',
    url: '/apis/apps/v1/watch/namespaces/demo/deployments',
    expect: res('watch', 'deployments', { group: 'apps', ns: 'demo' }),
  },
  { method: 'POST', url: '/api/v1/watch/pods', refuse: 'method-not-allowed' },
  { method: 'DELETE', url: '/api/v1/watch/namespaces/demo/pods/web', refuse: 'method-not-allowed' },
  { method: 'GET', url: '/api/v1/watch', refuse: 'unknown-shape' },
  { method: 'GET', url: '/api/v1/watch/namespaces/demo/pods/web/status', refuse: 'unknown-shape' },
  { method: 'GET', url: '/api/v1/watch/pods?watch=false', refuse: 'ambiguous-watch' },
  { method: 'GET', url: '/api/v1/pods?watch=false&watch=true', refuse: 'ambiguous-watch' },
  { method: 'GET', url: '/api/v1/pods?w%61tch=false&watch=true', refuse: 'ambiguous-watch', note: 'same key once decoded' },
  { method: 'GET', url: '/api/v1/pods?watch=yes', refuse: 'ambiguous-watch' },
  { method: 'GET', url: '/api/v1/pods?watch=', refuse: 'ambiguous-watch', note: 'the API server reads an empty value as true' },
  { method: 'GET', url: '/api/v1/pods?watch=TRUE', refuse: 'ambiguous-watch' },
  { method: 'GET', url: `${POD}?watch=true`, refuse: 'ambiguous-watch', note: 'ignored by a get, so refused' },
  { method: 'DELETE', url: '/api/v1/namespaces/demo/pods?watch=true', refuse: 'ambiguous-watch' },

  // --- the namespace object itself ---------------------------------------------------------------
  { method: 'GET', url: '/api/v1/namespaces/demo', expect: res('get', 'namespaces', { ns: 'demo', name: 'demo' }) },
  { method: 'DELETE', url: '/api/v1/namespaces/demo', expect: res('delete', 'namespaces', { ns: 'demo', name: 'demo' }) },
  { method: 'POST', url: '/api/v1/namespaces', expect: res('create', 'namespaces') },
  { method: 'GET', url: '/api/v1/namespaces', expect: res('list', 'namespaces') },
  { method: 'PUT', url: '/api/v1/namespaces/demo/finalize', expect: res('update', 'namespaces', { ns: 'demo', name: 'demo', sub: 'finalize' }) },
  { method: 'GET', url: '/api/v1/namespaces/demo/status', expect: res('get', 'namespaces', { ns: 'demo', name: 'demo', sub: 'status' }) },
  { method: 'PATCH', url: '/api/v1/namespaces/demo/status', expect: res('patch', 'namespaces', { ns: 'demo', name: 'demo', sub: 'status' }) },
  { method: 'POST', url: '/api/v1/namespaces/demo', refuse: 'method-not-allowed' },
  { method: 'GET', url: '/api/v1/namespaces/demo/status/extra', refuse: 'unknown-shape' },
  { method: 'GET', url: '/api/v1/namespaces/demo/namespaces/demo', refuse: 'unknown-shape' },
  { method: 'GET', url: '/api/v1/namespaces/Demo', refuse: 'upper-case' },
  { method: 'GET', url: '/api/v1/namespaces/demo.x/pods', refuse: 'invalid-namespace' },
  { method: 'GET', url: '/api/v1/namespaces/-demo/pods', refuse: 'invalid-namespace' },

  // --- exec / attach / portforward ---------------------------------------------------------------
  { method: 'GET', url: `${POD}/exec?${KUBECTL_EXEC_QUERY}`, expect: res('create', 'pods', { ns: 'demo', name: 'web', sub: 'exec', stream: 'exec' }), note: 'kubectl 1.30+ WebSocket' },
  { method: 'POST', url: `${POD}/exec?${KUBECTL_EXEC_QUERY}`, expect: res('create', 'pods', { ns: 'demo', name: 'web', sub: 'exec', stream: 'exec' }), note: 'SPDY' },
  { method: 'POST', url: `${POD}/exec?${CLIENT_NODE_EXEC_QUERY}`, expect: res('create', 'pods', { ns: 'demo', name: 'web', sub: 'exec', stream: 'exec' }) },
  { method: 'GET', url: `${POD}/attach?container=app&stdin=true&stdout=true&tty=true`, expect: res('create', 'pods', { ns: 'demo', name: 'web', sub: 'attach', stream: 'attach' }) },
  { method: 'POST', url: `${POD}/attach?container=app&stdout=true&stderr=true`, expect: res('create', 'pods', { ns: 'demo', name: 'web', sub: 'attach', stream: 'attach' }) },
  { method: 'POST', url: `${POD}/portforward`, expect: res('create', 'pods', { ns: 'demo', name: 'web', sub: 'portforward', stream: 'portforward' }) },
  { method: 'GET', url: `${POD}/portforward?ports=8080&ports=9090`, expect: res('create', 'pods', { ns: 'demo', name: 'web', sub: 'portforward', stream: 'portforward' }) },
  { method: 'PUT', url: `${POD}/exec?command=sh`, refuse: 'method-not-allowed' },
  { method: 'HEAD', url: `${POD}/exec?command=sh`, refuse: 'method-not-allowed' },
  { method: 'GET', url: '/api/v1/pods/web/exec?command=sh', refuse: 'unknown-shape', note: 'exec needs a namespace' },
  { method: 'GET', url: `${POD}/Exec?command=sh`, refuse: 'upper-case' },
  { method: 'GET', url: `${POD}/EXEC?command=sh`, refuse: 'upper-case' },
  { method: 'GET', url: `${POD}/exec/?command=sh`, refuse: 'trailing-slash' },
  { method: 'GET', url: `${POD}/exec;x?command=sh`, refuse: 'path-parameter' },
  { method: 'GET', url: `${POD};x/exec?command=sh`, refuse: 'path-parameter' },
  { method: 'GET', url: `${POD}/exec/extra?command=sh`, refuse: 'unknown-shape' },
  { method: 'GET', url: `${POD}/ex%65c?command=sh`, refuse: 'percent-encoding' },
  { method: 'GET', url: '/api/v1/namespaces/demo/pods/web%2Fexec?command=sh', refuse: 'encoded-slash' },
  { method: 'GET', url: '/api/v1/namespaces/demo/pods/web%2fexec?command=sh', refuse: 'encoded-slash' },
  { method: 'GET', url: `${POD}/exec?container=a&container=b&command=sh`, refuse: 'duplicate-parameter' },
  { method: 'GET', url: `${POD}/exec?command=sh&tty=yes`, refuse: 'bad-parameter', note: 'the API server reads any value but false/0 as true' },
  { method: 'POST', url: `${POD}/exec?command=sh&stdin=`, refuse: 'bad-parameter' },
  { method: 'GET', url: `${POD}/exec?command=sh;rm`, refuse: 'bad-query-encoding', note: 'Go drops the pair, URLSearchParams keeps it' },

  // --- other pod subresources -------------------------------------------------------------------
  { method: 'GET', url: `${POD}/log?container=app&follow=true&tailLines=10`, expect: res('get', 'pods', { ns: 'demo', name: 'web', sub: 'log' }) },
  { method: 'GET', url: `${POD}/status`, expect: res('get', 'pods', { ns: 'demo', name: 'web', sub: 'status' }) },
  { method: 'PUT', url: `${POD}/status`, expect: res('update', 'pods', { ns: 'demo', name: 'web', sub: 'status' }) },
  { method: 'GET', url: `${POD}/ephemeralcontainers`, expect: res('get', 'pods', { ns: 'demo', name: 'web', sub: 'ephemeralcontainers' }) },
  { method: 'PATCH', url: `${POD}/ephemeralcontainers`, expect: res('patch', 'pods', { ns: 'demo', name: 'web', sub: 'ephemeralcontainers' }) },
  { method: 'POST', url: `${POD}/eviction`, expect: res('create', 'pods', { ns: 'demo', name: 'web', sub: 'eviction' }) },
  { method: 'POST', url: `${POD}/binding`, expect: res('create', 'pods', { ns: 'demo', name: 'web', sub: 'binding' }) },
  { method: 'GET', url: '/apis/apps/v1/namespaces/demo/deployments/web/scale', expect: res('get', 'deployments', { group: 'apps', ns: 'demo', name: 'web', sub: 'scale' }) },
  { method: 'PUT', url: '/apis/apps/v1/namespaces/demo/deployments/web/scale', expect: res('update', 'deployments', { group: 'apps', ns: 'demo', name: 'web', sub: 'scale' }) },
  { method: 'GET', url: `${POD}/log/extra`, refuse: 'unknown-shape' },
  { method: 'GET', url: `${POD}/1og`, refuse: 'invalid-subresource' },

  // --- proxy ------------------------------------------------------------------------------------
  { method: 'GET', url: '/api/v1/nodes/node-1/proxy', expect: res('get', 'nodes', { name: 'node-1', sub: 'proxy' }) },
  { method: 'GET', url: '/api/v1/nodes/node-1/proxy/metrics', expect: res('get', 'nodes', { name: 'node-1', sub: 'proxy', proxyPath: '/metrics' }) },
  { method: 'GET', url: '/api/v1/nodes/node-1/proxy/metrics/cadvisor', expect: res('get', 'nodes', { name: 'node-1', sub: 'proxy', proxyPath: '/metrics/cadvisor' }) },
  { method: 'GET', url: '/api/v1/namespaces/demo/pods/web:8080/proxy', expect: res('get', 'pods', { ns: 'demo', name: 'web:8080', sub: 'proxy' }) },
  {
    method: 'GET',
    url: '/api/v1/namespaces/demo/pods/web:8080/proxy/some/path?q=1&q=2',
    expect: res('get', 'pods', { ns: 'demo', name: 'web:8080', sub: 'proxy', proxyPath: '/some/path' }),
    note: 'the proxied query is the backend\'s business: repeats allowed',
  },
  {
    method: 'GET',
    url: '/api/v1/namespaces/demo/services/https:svc:443/proxy/x',
    expect: res('get', 'services', { ns: 'demo', name: 'https:svc:443', sub: 'proxy', proxyPath: '/x' }),
  },
  {
    method: 'POST',
    url: '/api/v1/namespaces/demo/services/http:svc:80/proxy/api/Submit',
    expect: res('create', 'services', { ns: 'demo', name: 'http:svc:80', sub: 'proxy', proxyPath: '/api/Submit' }),
    note: 'upper case is allowed in the proxied tail only',
  },
  { method: 'DELETE', url: '/api/v1/namespaces/demo/pods/web:8080/proxy/cache', expect: res('delete', 'pods', { ns: 'demo', name: 'web:8080', sub: 'proxy', proxyPath: '/cache' }) },
  { method: 'GET', url: '/api/v1/nodes/node-1/proxy/metrics/', refuse: 'trailing-slash' },
  { method: 'GET', url: '/api/v1/nodes/node-1/proxy/', refuse: 'trailing-slash' },
  { method: 'GET', url: '/api/v1/nodes/node-1/proxy/../../pods', refuse: 'dot-segment' },
  { method: 'GET', url: '/api/v1/nodes/node-1/proxy/%2E%2E/exec', refuse: 'encoded-dot' },
  { method: 'GET', url: '/api/v1/nodes/node-1/proxy/a%20b', refuse: 'percent-encoding' },
  { method: 'GET', url: '/api/v1/nodes/node-1/proxy//run', refuse: 'double-slash' },
  { method: 'GET', url: '/api/v1/nodes/node-1/proxy/run;x', refuse: 'path-parameter' },
  { method: 'GET', url: '/api/v1/proxy/nodes/node-1', refuse: 'unknown-shape', note: 'legacy proxy verb prefix' },
  { method: 'GET', url: '/api/v1/namespaces/demo/proxy', refuse: 'unknown-shape' },
  { method: 'GET', url: '/api/v1/namespaces/demo/watch/pods', refuse: 'unknown-shape' },

  // --- named groups and their look-alikes ---------------------------------------------------------
  { method: 'GET', url: '/apis/v1/pods', refuse: 'invalid-group' },
  { method: 'GET', url: '/apis/v1/namespaces/demo/pods', refuse: 'invalid-group' },
  { method: 'GET', url: '/apis/v1', refuse: 'invalid-group' },
  { method: 'GET', url: '/apis/apps', expect: nonRes() },
  { method: 'GET', url: '/apis/apps/v1', expect: nonRes() },
  { method: 'GET', url: '/apis/example.com/v1/widgets', expect: res('list', 'widgets', { group: 'example.com' }) },
  {
    method: 'PUT',
    url: '/apis/example.com/v1/namespaces/demo/widgets/w1/status',
    expect: res('update', 'widgets', { group: 'example.com', ns: 'demo', name: 'w1', sub: 'status' }),
  },
  { method: 'GET', url: '/apis/rbac.authorization.k8s.io/v1/clusterroles/x', expect: res('get', 'clusterroles', { group: 'rbac.authorization.k8s.io', name: 'x' }) },
  {
    method: 'GET',
    url: '/apis/rbac.authorization.k8s.io/v1/clusterroles/system:aggregate-to-admin',
    expect: res('get', 'clusterroles', { group: 'rbac.authorization.k8s.io', name: 'system:aggregate-to-admin' }),
  },
  { method: 'GET', url: '/apis/example/v1/widgets', refuse: 'invalid-group' },
  { method: 'GET', url: '/apis/-x.example.com/v1/widgets', refuse: 'invalid-group' },
  { method: 'GET', url: '/apis/Apps/v1/deployments', refuse: 'upper-case' },
  { method: 'GET', url: '/apis/apps/V1/deployments', refuse: 'upper-case' },
  { method: 'GET', url: '/apis/apps/v1/Deployments', refuse: 'upper-case' },
  { method: 'GET', url: '/apis/apps/1/deployments', refuse: 'invalid-version' },
  { method: 'GET', url: '/apis/apps/v1/namespaces/demo/1deployments', refuse: 'invalid-resource' },
  { method: 'GET', url: '/apis/apps/v1beta2/deployments', expect: res('list', 'deployments', { group: 'apps', version: 'v1beta2' }) },
  { method: 'GET', url: '/apis/batch/v1/namespaces/demo/jobs', expect: res('list', 'jobs', { group: 'batch', ns: 'demo' }) },
  { method: 'GET', url: '/apis/policy/v1/namespaces/demo/poddisruptionbudgets', expect: res('list', 'poddisruptionbudgets', { group: 'policy', ns: 'demo' }) },
  { method: 'GET', url: '/apis/autoscaling/v2/horizontalpodautoscalers', expect: res('list', 'horizontalpodautoscalers', { group: 'autoscaling', version: 'v2' }) },
  { method: 'GET', url: '/apis/extensions/v1beta1/ingresses', expect: res('list', 'ingresses', { group: 'extensions', version: 'v1beta1' }) },
  { method: 'GET', url: '/api/v2/pods', refuse: 'invalid-version' },
  { method: 'GET', url: '/api/V1/pods', refuse: 'upper-case' },
  { method: 'GET', url: '/api/v1/Pods', refuse: 'upper-case' },
  { method: 'GET', url: '/API/v1/pods', refuse: 'upper-case' },
  { method: 'GET', url: '/API/v1', refuse: 'upper-case' },

  // --- identity- and impersonation-related endpoints ------------------------------------------------
  { method: 'POST', url: '/apis/authentication.k8s.io/v1/selfsubjectreviews', expect: res('create', 'selfsubjectreviews', { group: 'authentication.k8s.io' }) },
  { method: 'POST', url: '/apis/authentication.k8s.io/v1/tokenreviews', expect: res('create', 'tokenreviews', { group: 'authentication.k8s.io' }) },
  {
    method: 'POST',
    url: '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews',
    expect: res('create', 'selfsubjectaccessreviews', { group: 'authorization.k8s.io' }),
  },
  {
    method: 'POST',
    url: '/apis/authorization.k8s.io/v1/namespaces/demo/localsubjectaccessreviews',
    expect: res('create', 'localsubjectaccessreviews', { group: 'authorization.k8s.io', ns: 'demo' }),
  },
  {
    method: 'POST',
    url: '/api/v1/namespaces/kube-system/serviceaccounts/bastion/token',
    expect: res('create', 'serviceaccounts', { ns: 'kube-system', name: 'bastion', sub: 'token' }),
  },
  {
    method: 'PUT',
    url: '/apis/certificates.k8s.io/v1/certificatesigningrequests/csr-1/approval',
    expect: res('update', 'certificatesigningrequests', { group: 'certificates.k8s.io', name: 'csr-1', sub: 'approval' }),
  },
  {
    method: 'GET',
    url: '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/ops@example.com',
    expect: res('get', 'clusterrolebindings', { group: 'rbac.authorization.k8s.io', name: 'ops@example.com' }),
  },
  { method: 'GET', url: '/api/v1/namespaces/kube-system/serviceaccounts/system:serviceaccount:x', expect: res('get', 'serviceaccounts', { ns: 'kube-system', name: 'system:serviceaccount:x' }) },
  { method: 'GET', url: '/apis/rbac.authorization.k8s.io/v1/clusterroles/System:masters', refuse: 'upper-case' },

  // --- names -------------------------------------------------------------------------------------
  { method: 'GET', url: '/api/v1/namespaces/demo/pods/Web', refuse: 'upper-case' },
  { method: 'GET', url: '/api/v1/namespaces/demo/pods/-web', refuse: 'invalid-name' },
  { method: 'GET', url: '/api/v1/namespaces/demo/pods/web~1', refuse: 'invalid-name' },
  { method: 'GET', url: '/api/v1/namespaces/demo/pods/web_1', refuse: 'invalid-name' },
  { method: 'GET', url: '/api/v1/namespaces/demo/pods/web:', refuse: 'invalid-name' },

  // --- non-resource ----------------------------------------------------------------------------
  { method: 'GET', url: '/', expect: nonRes() },
  { method: 'GET', url: '/version', expect: nonRes() },
  { method: 'HEAD', url: '/version', expect: nonRes() },
  { method: 'GET', url: '/api', expect: nonRes() },
  { method: 'GET', url: '/api/v1', expect: nonRes() },
  { method: 'GET', url: '/apis', expect: nonRes() },
  { method: 'POST', url: '/api', expect: nonRes('post') },
  { method: 'GET', url: '/openapi/v2', expect: nonRes() },
  { method: 'GET', url: '/openapi/v3', expect: nonRes() },
  { method: 'GET', url: '/openapi/v3/apis/apps/v1?hash=8A3F0B1C', expect: nonRes() },
  { method: 'GET', url: '/openapi/v3/api/v1', expect: nonRes() },
  { method: 'GET', url: '/healthz', expect: nonRes() },
  { method: 'GET', url: '/livez', expect: nonRes() },
  { method: 'GET', url: '/readyz?verbose', expect: nonRes() },
  { method: 'GET', url: '/readyz/etcd', expect: nonRes() },
  { method: 'GET', url: '/livez/poststarthook/start-apiextensions-controllers', expect: nonRes() },
  { method: 'GET', url: '/metrics', expect: nonRes() },
  { method: 'GET', url: '/metrics/slis', expect: nonRes() },
  { method: 'GET', url: '/openapi/v4', refuse: 'unknown-shape' },
  { method: 'GET', url: '/openapi/v2/x', refuse: 'unknown-shape' },
  { method: 'GET', url: '/logs/kube-apiserver.log', refuse: 'unknown-shape' },
  { method: 'GET', url: '/version/x', refuse: 'unknown-shape' },
  { method: 'GET', url: '/metrics/x', refuse: 'unknown-shape' },
  { method: 'GET', url: '/Version', refuse: 'upper-case' },
  { method: 'GET', url: '/readyz/Etcd', refuse: 'upper-case' },
  { method: 'GET', url: '/api?watch=true', refuse: 'ambiguous-watch' },

  // --- request-target syntax ---------------------------------------------------------------------
  { method: 'GET', url: 'api/v1/pods', refuse: 'not-origin-form' },
  { method: 'GET', url: '*', refuse: 'not-origin-form' },
  { method: 'GET', url: '', refuse: 'not-origin-form' },
  { method: 'GET', url: 'https://evil.example/api/v1/pods', refuse: 'absolute-form' },
  { method: 'GET', url: 'http://127.0.0.1:6443/api/v1/namespaces/demo/pods/web/exec', refuse: 'absolute-form' },
  { method: 'GET', url: '/api/v1/pods#x', refuse: 'fragment' },
  { method: 'GET', url: '/api/v1/pods?x=1#y', refuse: 'fragment' },
  { method: 'GET', url: '/api/v1//pods', refuse: 'double-slash' },
  { method: 'GET', url: '//api/v1/pods', refuse: 'double-slash' },
  { method: 'GET', url: '//evil.example/api/v1/pods', refuse: 'double-slash' },
  { method: 'GET', url: '/api/v1/pods/', refuse: 'trailing-slash' },
  { method: 'GET', url: '/api/', refuse: 'trailing-slash' },
  { method: 'GET', url: '/api/v1/./pods', refuse: 'dot-segment' },
  { method: 'GET', url: '/api/v1/namespaces/demo/pods/../secrets', refuse: 'dot-segment' },
  { method: 'GET', url: '/api/v1/namespaces/demo/pods/..', refuse: 'dot-segment' },
  { method: 'GET', url: '/api/v1/namespaces/demo/pods/%2e%2e/secrets', refuse: 'encoded-dot' },
  { method: 'GET', url: '/api/v1/namespaces/demo/secrets%5Cx', refuse: 'encoded-backslash' },
  { method: 'GET', url: '/api/v1/namespaces/demo/secrets%5cx', refuse: 'encoded-backslash' },
  { method: 'GET', url: '/api/v1/namespaces/demo\\secrets', refuse: 'backslash' },
  { method: 'GET', url: '/api/v1/pods;x=y', refuse: 'path-parameter' },
  { method: 'GET', url: '/api/v1/po%64s', refuse: 'percent-encoding' },
  { method: 'GET', url: '/api/v1/pods%zz', refuse: 'percent-encoding' },
  { method: 'GET', url: '/api/v1/pods%2', refuse: 'percent-encoding' },
  { method: 'GET', url: '/api/v1/pods x', refuse: 'control-character' },
  { method: 'GET', url: '/api/v1/pods\t', refuse: 'control-character' },
  { method: 'GET', url: '/api/v1/pods\u0000/x', refuse: 'control-character' },
  { method: 'GET', url: '/api/v1/pods\u007f', refuse: 'control-character' },
  { method: 'GET', url: '/api/v1/pods?labelSelector=a b', refuse: 'control-character' },
  { method: 'GET', url: '/api/v1/p\u00f6ds', refuse: 'invalid-character' },
  { method: 'GET', url: '/api/v1/pods{x}', refuse: 'invalid-character' },
  { method: 'GET', url: '/api/v1/pods|x', refuse: 'invalid-character' },
  { method: 'GET', url: `/api/v1/namespaces/demo/pods/${'a'.repeat(4100)}`, refuse: 'path-too-long' },
  { method: 'GET', url: `/api/v1/pods?labelSelector=${'a'.repeat(70000)}`, refuse: 'query-too-long' },

  // --- query syntax -----------------------------------------------------------------------------
  { method: 'GET', url: '/api/v1/pods?labelSelector=a;b', refuse: 'bad-query-encoding' },
  { method: 'GET', url: '/api/v1/pods?labelSelector=%zz', refuse: 'bad-query-encoding' },
  { method: 'GET', url: '/api/v1/pods?labelSelector=%FF', refuse: 'bad-query-encoding', note: 'not UTF-8' },
  { method: 'GET', url: '/api/v1/pods?limit=1&limit=2', refuse: 'duplicate-parameter' },
  { method: 'GET', url: '/api/v1/pods?labelSelector=<x>', refuse: 'invalid-character' },
  { method: 'DELETE', url: `${POD}?dryRun=All&dryRun=All`, expect: res('delete', 'pods', { ns: 'demo', name: 'web' }) },
];
