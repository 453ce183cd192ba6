import { describe, expect, it } from 'vitest';
import type { KubeRequest, PolicyAction } from '../model/request.js';
import { DEFAULT_POLICY_YAML } from './default-policy.js';
import { evaluate } from './evaluate.js';
import { builtInPolicy, loadPolicy, policyHash } from './load.js';
import { agent, nonResourceRequest as nr, resourceRequest as r, streamRequest as stream } from './test-support.js';

type Row = [label: string, req: KubeRequest, action: PolicyAction, rule: string, impersonation?: boolean];

const ns = 'shop';

const rows: Row[] = [
  // Reads pass...
  ['get pod', r('get', 'pods', { ns, name: 'web-0' }), 'allow', 'reads'],
  ['list pods in a namespace', r('list', 'pods', { ns }), 'allow', 'reads'],
  ['list pods in all namespaces', r('list', 'pods'), 'allow', 'reads'],
  ['watch pods', r('watch', 'pods', { ns }), 'allow', 'reads'],
  ['get pod logs', r('get', 'pods', { ns, name: 'web-0', sub: 'log' }), 'allow', 'reads'],
  ['get deployment', r('get', 'deployments', { group: 'apps', ns, name: 'web' }), 'allow', 'reads'],
  ['list namespaces', r('list', 'namespaces'), 'allow', 'reads'],
  ['get namespace', r('get', 'namespaces', { name: ns }), 'allow', 'reads'],
  ['get node', r('get', 'nodes', { name: 'node-1' }), 'allow', 'reads'],
  ['list clusterroles', r('list', 'clusterroles', { group: 'rbac.authorization.k8s.io' }), 'allow', 'reads'],
  ['list configmaps', r('list', 'configmaps', { ns }), 'allow', 'reads'],
  ['list custom resources', r('list', 'widgets', { group: 'example.com', ns }), 'allow', 'reads'],
  ['list events.k8s.io events', r('list', 'events', { group: 'events.k8s.io', version: 'v1', ns }), 'allow', 'reads'],
  // ...except secrets.
  ['get secret', r('get', 'secrets', { ns, name: 'db' }), 'approval', 'secrets-need-approval'],
  ['list secrets', r('list', 'secrets', { ns }), 'approval', 'secrets-need-approval'],
  ['watch secrets in all namespaces', r('watch', 'secrets'), 'approval', 'secrets-need-approval'],
  ['create secret', r('create', 'secrets', { ns }), 'approval', 'secrets-need-approval'],
  ['delete secret', r('delete', 'secrets', { ns, name: 'db' }), 'approval', 'secrets-need-approval'],
  // Streams need approval, over either transport.
  ['exec over WebSocket (GET)', stream('exec', 'GET', ns, 'web-0'), 'approval', 'pod-streams-need-approval'],
  ['exec over SPDY (POST)', stream('exec', 'POST', ns, 'web-0'), 'approval', 'pod-streams-need-approval'],
  ['attach over WebSocket (GET)', stream('attach', 'GET', ns, 'web-0'), 'approval', 'pod-streams-need-approval'],
  ['attach over SPDY (POST)', stream('attach', 'POST', ns, 'web-0'), 'approval', 'pod-streams-need-approval'],
  ['port-forward over WebSocket (GET)', stream('portforward', 'GET', ns, 'web-0'), 'approval', 'pod-streams-need-approval'],
  ['port-forward over SPDY (POST)', stream('portforward', 'POST', ns, 'web-0'), 'approval', 'pod-streams-need-approval'],
  ['pods/exec without a stream marker', r('create', 'pods', { ns, name: 'web-0', sub: 'exec', method: 'GET' }), 'approval', 'pod-streams-need-approval'],
  ['pods/exec as a GET verb', r('get', 'pods', { ns, name: 'web-0', sub: 'exec' }), 'approval', 'pod-streams-need-approval'],
  ['add an ephemeral container', r('patch', 'pods', { ns, name: 'web-0', sub: 'ephemeralcontainers' }), 'approval', 'ephemeral-containers-need-approval'],
  ['read pods/ephemeralcontainers', r('get', 'pods', { ns, name: 'web-0', sub: 'ephemeralcontainers' }), 'approval', 'ephemeral-containers-need-approval'],
  ['GET pods/proxy', r('get', 'pods', { ns, name: 'web-0', sub: 'proxy', proxyPath: 'metrics' }), 'approval', 'proxy-needs-approval'],
  ['POST pods/proxy', r('create', 'pods', { ns, name: 'web-0', sub: 'proxy', proxyPath: 'admin/reset' }), 'approval', 'proxy-needs-approval'],
  ['GET services/proxy', r('get', 'services', { ns, name: 'web', sub: 'proxy' }), 'approval', 'proxy-needs-approval'],
  ['delete namespace', r('delete', 'namespaces', { name: ns }), 'approval', 'namespace-delete-needs-approval'],
  // Denied.
  ['GET nodes/proxy', r('get', 'nodes', { name: 'node-1', sub: 'proxy', proxyPath: 'configz' }), 'deny', 'deny-node-proxy'],
  ['POST nodes/proxy (kubelet exec)', r('create', 'nodes', { name: 'node-1', sub: 'proxy', proxyPath: 'exec/shop/web-0/app' }), 'deny', 'deny-node-proxy'],
  ['get pod while impersonating', r('get', 'pods', { ns, name: 'web-0' }), 'deny', 'deny-impersonation', true],
  ['exec while impersonating', stream('exec', 'POST', ns, 'web-0'), 'deny', 'deny-impersonation', true],
  // Discovery passes with the headers stripped, so kubectl reaches the real request and prints the refusal.
  ['discovery while impersonating', nr('GET', '/api'), 'allow', 'discovery', true],
  ['non-discovery path while impersonating', nr('GET', '/metrics'), 'deny', 'default', true],
  // Writes in system namespaces need approval, configmaps and events included; reads there pass.
  ['create configmap in kube-system', r('create', 'configmaps', { ns: 'kube-system' }), 'approval', 'system-namespace-writes-need-approval'],
  ['update aws-auth in kube-system', r('update', 'configmaps', { ns: 'kube-system', name: 'aws-auth' }), 'approval', 'system-namespace-writes-need-approval'],
  ['patch coredns in kube-system', r('patch', 'configmaps', { ns: 'kube-system', name: 'coredns' }), 'approval', 'system-namespace-writes-need-approval'],
  ['delete extension-apiserver-authentication', r('delete', 'configmaps', { ns: 'kube-system', name: 'extension-apiserver-authentication' }), 'approval', 'system-namespace-writes-need-approval'],
  ['delete all configmaps in kube-public', r('deletecollection', 'configmaps', { ns: 'kube-public' }), 'approval', 'system-namespace-writes-need-approval'],
  ['create an event in kube-node-lease', r('create', 'events', { ns: 'kube-node-lease' }), 'approval', 'system-namespace-writes-need-approval'],
  ['update a lease in kube-node-lease', r('update', 'leases', { group: 'coordination.k8s.io', ns: 'kube-node-lease', name: 'node-1' }), 'approval', 'system-namespace-writes-need-approval'],
  ['get aws-auth', r('get', 'configmaps', { ns: 'kube-system', name: 'aws-auth' }), 'allow', 'reads'],
  ['list configmaps in kube-system', r('list', 'configmaps', { ns: 'kube-system' }), 'allow', 'reads'],
  // Ordinary writes.
  ['create configmap', r('create', 'configmaps', { ns }), 'allow', 'configmap-and-event-writes'],
  ['update configmap', r('update', 'configmaps', { ns, name: 'settings' }), 'allow', 'configmap-and-event-writes'],
  ['patch configmap', r('patch', 'configmaps', { ns, name: 'settings' }), 'allow', 'configmap-and-event-writes'],
  ['delete configmap', r('delete', 'configmaps', { ns, name: 'settings' }), 'allow', 'configmap-and-event-writes'],
  ['delete all configmaps in a namespace', r('deletecollection', 'configmaps', { ns }), 'allow', 'configmap-and-event-writes'],
  ['create event', r('create', 'events', { ns }), 'allow', 'configmap-and-event-writes'],
  ['kubectl auth can-i', r('create', 'selfsubjectaccessreviews', { group: 'authorization.k8s.io' }), 'allow', 'self-reviews'],
  ['kubectl auth whoami', r('create', 'selfsubjectreviews', { group: 'authentication.k8s.io' }), 'allow', 'self-reviews'],
  // Other writes need approval.
  ['create pod', r('create', 'pods', { ns }), 'approval', 'other-writes-need-approval'],
  ['delete pod', r('delete', 'pods', { ns, name: 'web-0' }), 'approval', 'other-writes-need-approval'],
  ['patch deployment', r('patch', 'deployments', { group: 'apps', ns, name: 'web' }), 'approval', 'other-writes-need-approval'],
  ['scale deployment', r('update', 'deployments', { group: 'apps', ns, name: 'web', sub: 'scale' }), 'approval', 'other-writes-need-approval'],
  ['mint a service account token', r('create', 'serviceaccounts', { ns, name: 'default', sub: 'token' }), 'approval', 'other-writes-need-approval'],
  ['create rolebinding', r('create', 'rolebindings', { group: 'rbac.authorization.k8s.io', ns }), 'approval', 'other-writes-need-approval'],
  ['create clusterrolebinding', r('create', 'clusterrolebindings', { group: 'rbac.authorization.k8s.io' }), 'approval', 'other-writes-need-approval'],
  ['create namespace', r('create', 'namespaces'), 'approval', 'other-writes-need-approval'],
  ['cordon node', r('patch', 'nodes', { name: 'node-1' }), 'approval', 'other-writes-need-approval'],
  ['configmaps in another API group', r('create', 'configmaps', { group: 'evil.example.com', ns }), 'approval', 'other-writes-need-approval'],
  ['configmap write outside a namespace', r('create', 'configmaps'), 'approval', 'other-writes-need-approval'],
  ['create custom resource', r('create', 'widgets', { group: 'example.com', ns }), 'approval', 'other-writes-need-approval'],
  // Non-resource requests: discovery passes, anything else is unclassified and denied.
  ['GET /api', nr('GET', '/api'), 'allow', 'discovery'],
  ['GET /api/v1', nr('GET', '/api/v1'), 'allow', 'discovery'],
  ['GET /apis', nr('GET', '/apis'), 'allow', 'discovery'],
  ['GET /apis/apps/v1', nr('GET', '/apis/apps/v1'), 'allow', 'discovery'],
  ['GET /version', nr('GET', '/version'), 'allow', 'discovery'],
  ['HEAD /version', nr('HEAD', '/version'), 'allow', 'discovery'],
  ['GET /openapi/v2', nr('GET', '/openapi/v2'), 'allow', 'discovery'],
  ['GET /openapi/v3/apis/apps/v1', nr('GET', '/openapi/v3/apis/apps/v1'), 'allow', 'discovery'],
  ['GET /healthz', nr('GET', '/healthz'), 'allow', 'discovery'],
  ['GET /readyz/etcd', nr('GET', '/readyz/etcd'), 'allow', 'discovery'],
  ['POST /api', nr('POST', '/api'), 'deny', 'default'],
  ['GET /metrics', nr('GET', '/metrics'), 'deny', 'default'],
  ['GET /logs/kube-apiserver.log', nr('GET', '/logs/kube-apiserver.log'), 'deny', 'default'],
  ['GET /debug/pprof/heap', nr('GET', '/debug/pprof/heap'), 'deny', 'default'],
  ['GET /versionx (not a prefix rule)', nr('GET', '/versionx'), 'deny', 'default'],
  ['GET /unknown', nr('GET', '/unknown/thing'), 'deny', 'default'],
];

describe('default policy', () => {
  const policy = builtInPolicy();

  it('is the built-in policy, hashed over its exact bytes', () => {
    expect(policy.origin).toBe('built-in');
    expect(policy.text).toBe(DEFAULT_POLICY_YAML);
    expect(policy.hash).toBe(policyHash(Buffer.from(DEFAULT_POLICY_YAML, 'utf8')));
    expect(policy.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(loadPolicy()).toBe(policy);
    expect(policy.document.default).toBe('deny');
  });

  it('has a table of at least 40 cases', () => {
    expect(rows.length).toBeGreaterThanOrEqual(40);
  });

  it.each(rows)('%s', (_label, req, action, rule, impersonation = false) => {
    const decision = evaluate(policy, req, { principal: agent, impersonation });
    expect({ action: decision.action, rule: decision.rule }).toEqual({ action, rule });
    expect(decision.policyHash).toBe(policy.hash);
    expect(decision.reason.length).toBeGreaterThan(0);
  });

  it('gives readable reasons', () => {
    const ctx = { principal: agent, impersonation: false };
    expect(evaluate(policy, stream('exec', 'POST', ns, 'web-0'), ctx).reason).toBe(
      'exec pods/exec "web-0" in namespace "shop" needs approval: interactive access to a pod needs an approval (policy rule "pod-streams-need-approval")',
    );
    expect(evaluate(policy, r('get', 'nodes', { name: 'n1', sub: 'proxy' }), ctx).reason).toBe(
      'get nodes/proxy "n1" is denied: nodes/proxy reaches the kubelet API directly (exec into any pod on the node, unrecorded) (policy rule "deny-node-proxy")',
    );
    expect(evaluate(policy, nr('GET', '/metrics'), ctx).reason).toBe('get /metrics is denied (no policy rule matches; default: deny)');
    expect(evaluate(policy, r('list', 'deployments', { group: 'apps', ns }), ctx).reason).toBe('list deployments.apps in namespace "shop" is allowed (policy rule "reads")');
  });
});
