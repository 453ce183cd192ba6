import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { upstreamFromCredentials, upstreamFromKubeconfigFile } from './upstream.js';

const CA = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';

describe('KubeConfigUpstream.requestOptions', () => {
  it('builds static credentials once and hands each caller its own copy', async () => {
    const upstream = upstreamFromCredentials('https://127.0.0.1:6443', CA, 'tok-1', 'test');
    const a = await upstream.requestOptions();
    expect(a.headers).toMatchObject({ Authorization: 'Bearer tok-1' });
    // A caller completes its copy for its request; the next caller does not see it.
    a.path = '/api/v1/pods';
    (a.headers as Record<string, string>)['accept'] = 'application/json';
    const b = await upstream.requestOptions();
    expect(b).not.toBe(a);
    expect(b.path).toBeUndefined();
    expect(b.headers).toEqual({ Authorization: 'Bearer tok-1' });
    expect(b.agent).toBe(a.agent);
  });

  it('asks an exec plugin again for every request (its credentials may rotate)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kb-upstream-'));
    const counter = join(dir, 'count');
    writeFileSync(counter, '0');
    // The plugin answers a new token each time it runs.
    const plugin = join(dir, 'plugin.sh');
    writeFileSync(
      plugin,
      `#!/bin/sh\nn=$(($(cat ${counter}) + 1)); echo $n > ${counter}\necho '{"apiVersion":"client.authentication.k8s.io/v1beta1","kind":"ExecCredential","status":{"token":"tok-'$n'"}}'\n`,
      { mode: 0o755 },
    );
    const kubeconfig = join(dir, 'kubeconfig');
    writeFileSync(
      kubeconfig,
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [{ name: 'c', cluster: { server: 'https://127.0.0.1:6443', 'certificate-authority-data': Buffer.from(CA).toString('base64') } }],
        users: [{ name: 'u', user: { exec: { apiVersion: 'client.authentication.k8s.io/v1beta1', command: plugin, interactiveMode: 'Never' } } }],
        contexts: [{ name: 'x', context: { cluster: 'c', user: 'u' } }],
        'current-context': 'x',
      }),
    );
    const upstream = upstreamFromKubeconfigFile(kubeconfig);
    const first = await upstream.requestOptions();
    const second = await upstream.requestOptions();
    expect(first.headers).toMatchObject({ Authorization: 'Bearer tok-1' });
    expect(second.headers).toMatchObject({ Authorization: 'Bearer tok-2' });
  });
});
