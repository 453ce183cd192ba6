// The objects a fresh simulated cluster starts with.
import type { KubeObject } from './store.js';

function namespace(name: string): KubeObject {
  return { apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels: { 'kubernetes.io/metadata.name': name } }, spec: { finalizers: ['kubernetes'] }, status: { phase: 'Active' } };
}

const WEB_APP = [
  'echo "web-0 app: listening on :8080"',
  'i=0',
  'while :; do i=$((i+1)); echo "web-0 app: GET /healthz 200 (request $i)"; sleep 2; done',
].join('; ');

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
          restartPolicy: 'Always',
          containers: [
            { name: 'app', image: 'registry.example/web:1.0', command: ['sh', '-c', WEB_APP] },
            { name: 'sidecar', image: 'registry.example/sidecar:1.0', command: ['sh', '-c', 'echo "sidecar: started"; exec sleep infinity'] },
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
          restartPolicy: 'Always',
          containers: [
            { name: 'main', image: 'registry.example/shell:1.0', command: ['/bin/sh'], tty: true, stdin: true, env: [{ name: 'PS1', value: 'shell-0$ ' }] },
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
        spec: { restartPolicy: 'Always', containers: [{ name: 'busybox', image: 'busybox:1.36', command: ['sleep', 'infinity'] }] },
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
