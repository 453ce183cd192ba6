import { describe, expect, it } from 'vitest';
import type { KubeRequest, PolicyAction } from '../model/request.js';
import { DEFAULT_POLICY_YAML } from './default-policy.js';
import { evaluate } from './evaluate.js';
import { builtInPolicy, loadPolicy, policyHash } from './load.js';
import { agent, execRequest as exec, nonResourceRequest as nr, resourceRequest as r, streamRequest as stream } from './test-support.js';

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
  ['GET pods/proxy', r('get', 'pods', { ns, name: 'web-0', sub: 'proxy', proxyPath: 'metrics' }), 'approval', 'remote-access-needs-approval'],
  ['POST pods/proxy', r('create', 'pods', { ns, name: 'web-0', sub: 'proxy', proxyPath: 'admin/reset' }), 'approval', 'remote-access-needs-approval'],
  ['GET services/proxy', r('get', 'services', { ns, name: 'web', sub: 'proxy' }), 'approval', 'remote-access-needs-approval'],
  ['GET a KubeVirt console', r('get', 'virtualmachineinstances', { group: 'subresources.kubevirt.io', ns, name: 'vm', sub: 'console' }), 'approval', 'remote-access-needs-approval'],
  ['GET a KubeVirt vnc', r('get', 'virtualmachineinstances', { group: 'subresources.kubevirt.io', ns, name: 'vm', sub: 'vnc' }), 'approval', 'remote-access-needs-approval'],
  ['GET a custom resource proxy', r('get', 'widgets', { group: 'example.com', ns, name: 'w', sub: 'proxy' }), 'approval', 'remote-access-needs-approval'],
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
  ['delete all configmaps in a namespace (kube-root-ca.crt with them)', r('deletecollection', 'configmaps', { ns }), 'approval', 'trust-configmap-writes-need-approval'],
  ['create event', r('create', 'events', { ns }), 'allow', 'configmap-and-event-writes'],
  ['kubectl auth can-i', r('create', 'selfsubjectaccessreviews', { group: 'authorization.k8s.io' }), 'allow', 'self-reviews'],
  ['kubectl auth whoami', r('create', 'selfsubjectreviews', { group: 'authentication.k8s.io' }), 'allow', 'self-reviews'],
  // Trust-bearing configmaps need approval in any namespace; other configmaps pass.
  ['update kube-root-ca.crt in an app namespace', r('update', 'configmaps', { ns, name: 'kube-root-ca.crt' }), 'approval', 'trust-configmap-writes-need-approval'],
  ['patch kube-root-ca.crt', r('patch', 'configmaps', { ns, name: 'kube-root-ca.crt' }), 'approval', 'trust-configmap-writes-need-approval'],
  ['delete kube-root-ca.crt', r('delete', 'configmaps', { ns, name: 'kube-root-ca.crt' }), 'approval', 'trust-configmap-writes-need-approval'],
  ['patch aws-auth outside kube-system', r('patch', 'configmaps', { ns, name: 'aws-auth' }), 'approval', 'trust-configmap-writes-need-approval'],
  ['patch coredns outside kube-system', r('patch', 'configmaps', { ns: 'dns', name: 'coredns' }), 'approval', 'trust-configmap-writes-need-approval'],
  ['update extension-apiserver-authentication elsewhere', r('update', 'configmaps', { ns, name: 'extension-apiserver-authentication' }), 'approval', 'trust-configmap-writes-need-approval'],
  ['update cluster-info elsewhere', r('update', 'configmaps', { ns, name: 'cluster-info' }), 'approval', 'trust-configmap-writes-need-approval'],
  ['update cluster-info in kube-public', r('update', 'configmaps', { ns: 'kube-public', name: 'cluster-info' }), 'approval', 'system-namespace-writes-need-approval'],
  ['get kube-root-ca.crt', r('get', 'configmaps', { ns, name: 'kube-root-ca.crt' }), 'allow', 'reads'],
  // RBAC: any write, any group.
  ['create rolebinding', r('create', 'rolebindings', { group: 'rbac.authorization.k8s.io', ns }), 'approval', 'rbac-writes-need-approval'],
  ['patch role', r('patch', 'roles', { group: 'rbac.authorization.k8s.io', ns, name: 'edit' }), 'approval', 'rbac-writes-need-approval'],
  ['create clusterrolebinding', r('create', 'clusterrolebindings', { group: 'rbac.authorization.k8s.io' }), 'approval', 'rbac-writes-need-approval'],
  ['update clusterrole (aggregation labels)', r('update', 'clusterroles', { group: 'rbac.authorization.k8s.io', name: 'view' }), 'approval', 'rbac-writes-need-approval'],
  ['delete clusterrolebinding', r('delete', 'clusterrolebindings', { group: 'rbac.authorization.k8s.io', name: 'x' }), 'approval', 'rbac-writes-need-approval'],
  ['list clusterrolebindings', r('list', 'clusterrolebindings', { group: 'rbac.authorization.k8s.io' }), 'allow', 'reads'],
  // Identities and credentials.
  ['create serviceaccount', r('create', 'serviceaccounts', { ns }), 'approval', 'identity-writes-need-approval'],
  ['mint a service account token', r('create', 'serviceaccounts', { ns, name: 'default', sub: 'token' }), 'approval', 'identity-writes-need-approval'],
  ['patch a serviceaccount (imagePullSecrets)', r('patch', 'serviceaccounts', { ns, name: 'default' }), 'approval', 'identity-writes-need-approval'],
  ['create a CSR', r('create', 'certificatesigningrequests', { group: 'certificates.k8s.io' }), 'approval', 'identity-writes-need-approval'],
  ['approve a CSR', r('update', 'certificatesigningrequests', { group: 'certificates.k8s.io', name: 'csr-1', sub: 'approval' }), 'approval', 'identity-writes-need-approval'],
  ['sign a CSR (status)', r('update', 'certificatesigningrequests', { group: 'certificates.k8s.io', name: 'csr-1', sub: 'status' }), 'approval', 'identity-writes-need-approval'],
  ['create a cluster trust bundle', r('create', 'clustertrustbundles', { group: 'certificates.k8s.io', version: 'v1beta1' }), 'approval', 'identity-writes-need-approval'],
  ['token review (an oracle for found tokens)', r('create', 'tokenreviews', { group: 'authentication.k8s.io' }), 'approval', 'identity-writes-need-approval'],
  ['get a serviceaccount', r('get', 'serviceaccounts', { ns, name: 'default' }), 'allow', 'reads'],
  ['list CSRs', r('list', 'certificatesigningrequests', { group: 'certificates.k8s.io' }), 'allow', 'reads'],
  // What the API server trusts, admits and serves.
  ['create a mutating webhook', r('create', 'mutatingwebhookconfigurations', { group: 'admissionregistration.k8s.io' }), 'approval', 'admission-and-api-writes-need-approval'],
  ['delete a validating webhook', r('delete', 'validatingwebhookconfigurations', { group: 'admissionregistration.k8s.io', name: 'gatekeeper' }), 'approval', 'admission-and-api-writes-need-approval'],
  ['patch an admission policy binding', r('patch', 'validatingadmissionpolicybindings', { group: 'admissionregistration.k8s.io', name: 'b' }), 'approval', 'admission-and-api-writes-need-approval'],
  ['create a CRD', r('create', 'customresourcedefinitions', { group: 'apiextensions.k8s.io' }), 'approval', 'admission-and-api-writes-need-approval'],
  ['update a CRD status', r('update', 'customresourcedefinitions', { group: 'apiextensions.k8s.io', name: 'widgets.example.com', sub: 'status' }), 'approval', 'admission-and-api-writes-need-approval'],
  ['create an APIService', r('create', 'apiservices', { group: 'apiregistration.k8s.io' }), 'approval', 'admission-and-api-writes-need-approval'],
  ['list webhooks', r('list', 'validatingwebhookconfigurations', { group: 'admissionregistration.k8s.io' }), 'allow', 'reads'],
  // Nodes and storage.
  ['cordon node', r('patch', 'nodes', { name: 'node-1' }), 'approval', 'node-and-storage-writes-need-approval'],
  ['update node status', r('update', 'nodes', { name: 'node-1', sub: 'status' }), 'approval', 'node-and-storage-writes-need-approval'],
  ['create a (hostPath) persistent volume', r('create', 'persistentvolumes'), 'approval', 'node-and-storage-writes-need-approval'],
  ['create a storage class', r('create', 'storageclasses', { group: 'storage.k8s.io' }), 'approval', 'node-and-storage-writes-need-approval'],
  ['create a runtime class', r('create', 'runtimeclasses', { group: 'node.k8s.io' }), 'approval', 'node-and-storage-writes-need-approval'],
  // Workloads run code.
  ['create pod', r('create', 'pods', { ns }), 'approval', 'workload-writes-need-approval'],
  ['delete pod', r('delete', 'pods', { ns, name: 'web-0' }), 'approval', 'workload-writes-need-approval'],
  ['evict pod', r('create', 'pods', { ns, name: 'web-0', sub: 'eviction' }), 'approval', 'workload-writes-need-approval'],
  ['bind pod to a node', r('create', 'pods', { ns, name: 'web-0', sub: 'binding' }), 'approval', 'workload-writes-need-approval'],
  ['patch deployment', r('patch', 'deployments', { group: 'apps', ns, name: 'web' }), 'approval', 'workload-writes-need-approval'],
  ['scale deployment', r('update', 'deployments', { group: 'apps', ns, name: 'web', sub: 'scale' }), 'approval', 'workload-writes-need-approval'],
  ['create daemonset', r('create', 'daemonsets', { group: 'apps', ns }), 'approval', 'workload-writes-need-approval'],
  ['create statefulset', r('create', 'statefulsets', { group: 'apps', ns }), 'approval', 'workload-writes-need-approval'],
  ['create job', r('create', 'jobs', { group: 'batch', ns }), 'approval', 'workload-writes-need-approval'],
  ['create cronjob', r('create', 'cronjobs', { group: 'batch', ns }), 'approval', 'workload-writes-need-approval'],
  ['create replicationcontroller', r('create', 'replicationcontrollers', { ns }), 'approval', 'workload-writes-need-approval'],
  ['create podtemplate', r('create', 'podtemplates', { ns }), 'approval', 'workload-writes-need-approval'],
  // Every other write needs approval.
  ['create namespace', r('create', 'namespaces'), 'approval', 'other-writes-need-approval'],
  ['label namespace (pod security)', r('patch', 'namespaces', { name: ns }), 'approval', 'other-writes-need-approval'],
  ['create service', r('create', 'services', { ns }), 'approval', 'other-writes-need-approval'],
  ['patch endpoints', r('patch', 'endpoints', { ns, name: 'web' }), 'approval', 'other-writes-need-approval'],
  ['delete networkpolicy', r('delete', 'networkpolicies', { group: 'networking.k8s.io', ns, name: 'deny-all' }), 'approval', 'other-writes-need-approval'],
  ['subject access review', r('create', 'subjectaccessreviews', { group: 'authorization.k8s.io' }), 'approval', 'other-writes-need-approval'],
  ['update a lease outside kube-node-lease', r('update', 'leases', { group: 'coordination.k8s.io', ns, name: 'controller' }), 'approval', 'other-writes-need-approval'],
  ['configmaps in another API group', r('create', 'configmaps', { group: 'evil.example.com', ns }), 'approval', 'other-writes-need-approval'],
  ['configmap write outside a namespace', r('create', 'configmaps'), 'approval', 'other-writes-need-approval'],
  ['delete all events in a namespace', r('deletecollection', 'events', { ns }), 'approval', 'other-writes-need-approval'],
  ['create custom resource', r('create', 'widgets', { group: 'example.com', ns }), 'approval', 'other-writes-need-approval'],
  // kubectl cp: the directory probe passes (recorded), the tar that copies needs the one approval.
  ['cp probe: test -d DEST', exec(ns, 'web-0', ['test', '-d', '/tmp']), 'allow', 'cp-directory-probe'],
  ['cp probe over SPDY', exec(ns, 'web-0', ['test', '-d', 'report.bin'], 'POST'), 'allow', 'cp-directory-probe'],
  ['cp probe in kube-system', exec('kube-system', 'coredns-0', ['test', '-d', '/etc']), 'allow', 'cp-directory-probe'],
  ['test -d with a shell-looking path is one argument', exec(ns, 'web-0', ['test', '-d', '$(id); rm -rf /']), 'allow', 'cp-directory-probe'],
  ['test -d with an extra expression', exec(ns, 'web-0', ['test', '-d', '/tmp', '-a', '-f', '/x']), 'approval', 'pod-streams-need-approval'],
  ['test -f is not the probe', exec(ns, 'web-0', ['test', '-f', '/tmp']), 'approval', 'pod-streams-need-approval'],
  ['[ -d DEST ] is not the probe', exec(ns, 'web-0', ['[', '-d', '/tmp', ']']), 'approval', 'pod-streams-need-approval'],
  ['sh -c test -d is not the probe', exec(ns, 'web-0', ['sh', '-c', 'test -d /tmp']), 'approval', 'pod-streams-need-approval'],
  ['cp into a pod: tar -xmf', exec(ns, 'web-0', ['tar', '-xmf', '-', '-C', '.']), 'approval', 'pod-streams-need-approval'],
  ['cp out of a pod: tar cf', exec(ns, 'web-0', ['tar', 'cf', '-', 'report.bin']), 'approval', 'pod-streams-need-approval'],
  ['test -d while impersonating', exec(ns, 'web-0', ['test', '-d', '/tmp']), 'deny', 'deny-impersonation', true],
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
