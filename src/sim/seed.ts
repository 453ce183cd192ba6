// The objects a fresh simulated cluster starts with.
import type { KubeObject } from './store.js';

function namespace(name: string): KubeObject {
  return { apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels: { 'kubernetes.io/metadata.name': name } }, spec: { finalizers: ['kubernetes'] }, status: { phase: 'Active' } };
}

/**
 * demo/web-0's app: a real HTTP server on the pod's address, port 8080 (the kubelet's probe is
 * simulated by a log line every 2 s). It answers every request with who it is.
 */
const WEB_APP = `
const http = require('node:http');
const host = process.env.SIM_POD_ADDRESS || '127.0.0.1';
const server = http.createServer((req, res) => {
  const body = 'hello from ' + process.env.POD_NAMESPACE + '/' + process.env.POD_NAME + ' (container app, port 8080): ' + req.method + ' ' + req.url + '\\n';
  res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
  console.log('web-0 app: served ' + req.method + ' ' + req.url);
});
server.listen(8080, host, () => {
  console.log('web-0 app: listening on :8080');
  let i = 0;
  setInterval(() => console.log('web-0 app: GET /healthz 200 (request ' + ++i + ')'), 2000);
});
`.trim();

/** demo/web-0's sidecar: an echo service on port 7000 that returns every byte and honours half-close. */
const ECHO_SIDECAR = `
const net = require('node:net');
const host = process.env.SIM_POD_ADDRESS || '127.0.0.1';
net.createServer({ allowHalfOpen: true }, (socket) => socket.pipe(socket)).listen(7000, host, () => console.log('sidecar: started (echo on :7000)'));
`.trim();

/** Fields every container spec has once the API server has defaulted it (kubectl debug copies them). */
function defaulted<T extends Record<string, unknown>>(container: T): T & Record<string, unknown> {
  return {
    imagePullPolicy: 'IfNotPresent',
    resources: {},
    terminationMessagePath: '/dev/termination-log',
    terminationMessagePolicy: 'File',
    ...container,
  };
}

/** Pod spec fields the API server defaults. */
const POD_DEFAULTS = {
  dnsPolicy: 'ClusterFirst',
  enableServiceLinks: true,
  nodeName: 'sim-node-0',
  preemptionPolicy: 'PreemptLowerPriority',
  priority: 0,
  schedulerName: 'default-scheduler',
  securityContext: {},
  serviceAccount: 'default',
  serviceAccountName: 'default',
  terminationGracePeriodSeconds: 30,
  tolerations: [
    { key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 },
    { key: 'node.kubernetes.io/unreachable', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 },
  ],
};

export function seedObjects(): Array<{ resource: string; object: KubeObject }> {
  return [
    { resource: 'namespaces', object: namespace('default') },
    { resource: 'namespaces', object: namespace('demo') },
    { resource: 'namespaces', object: namespace('kube-system') },
    {
      resource: 'pods',
      object: {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: {
          name: 'web-0',
          namespace: 'demo',
          labels: { app: 'web' },
          annotations: { 'kubectl.kubernetes.io/default-container': 'app' },
        },
        spec: {
          ...POD_DEFAULTS,
          restartPolicy: 'Always',
          containers: [
            defaulted({ name: 'app', image: 'registry.example/web:1.0', command: ['node', '-e', WEB_APP], ports: [{ name: 'http', containerPort: 8080, protocol: 'TCP' }] }),
            defaulted({ name: 'sidecar', image: 'registry.example/sidecar:1.0', command: ['node', '-e', ECHO_SIDECAR], ports: [{ name: 'echo', containerPort: 7000, protocol: 'TCP' }] }),
          ],
        },
      },
    },
    {
      resource: 'pods',
      object: {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: 'shell-0', namespace: 'demo', labels: { app: 'shell' } },
        spec: {
          ...POD_DEFAULTS,
          restartPolicy: 'Always',
          containers: [
            defaulted({ name: 'main', image: 'registry.example/shell:1.0', command: ['/bin/sh'], tty: true, stdin: true, env: [{ name: 'PS1', value: 'shell-0$ ' }] }),
          ],
        },
      },
    },
    {
      resource: 'pods',
      object: {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: 'busybox', namespace: 'default', labels: { app: 'busybox' } },
        spec: { ...POD_DEFAULTS, restartPolicy: 'Always', containers: [defaulted({ name: 'busybox', image: 'busybox:1.36', command: ['sleep', 'infinity'] })] },
      },
    },
    {
      resource: 'secrets',
      object: {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'db-credentials', namespace: 'demo' },
        type: 'Opaque',
        data: { username: Buffer.from('app').toString('base64'), password: Buffer.from('s3cr3t-demo').toString('base64') },
      },
    },
    {
      resource: 'configmaps',
      object: {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: 'web-config', namespace: 'demo' },
        data: { 'listen.port': '8080', 'log.level': 'info' },
      },
    },
  ];
}
