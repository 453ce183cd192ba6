// Starts a bastion in-process on the embedded simulated cluster, with one agent and its kubeconfig.
import https from 'node:https';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBastion, type RunningBastion } from '../../src/app/bastion.js';
import { parseServeConfig } from '../../src/app/config.js';
import { chooseUpstream } from '../../src/cli/serve.js';
import { silentLogger, type Logger } from '../../src/observability/log.js';
import type { SimCluster } from '../../src/sim/cluster.js';
import type { AuditRecord } from '../../src/store/index.js';

export interface TestBastion {
  bastion: RunningBastion;
  sim: SimCluster;
  dir: string;
  agentName: string;
  agentToken: string;
  agentKubeconfig: string;
  /** The last audit row id (a cursor for auditSince). */
  auditCount(): Promise<number>;
  auditSince(afterId: number): Promise<AuditRecord[]>;
  rawRequest(method: string, path: string, headers?: Record<string, string>, token?: string): Promise<{ status: number; body: string }>;
  stop(): Promise<void>;
}

export async function startTestBastion(opts: { extraArgs?: string[]; log?: Logger; sim?: SimCluster } = {}): Promise<TestBastion> {
  const dir = mkdtempSync(join(tmpdir(), 'kb-bastion-test-'));
  const config = parseServeConfig(
    ['--data-dir', join(dir, 'data'), '--recordings', join(dir, 'recordings'), '--listen', '127.0.0.1:0', '--control-listen', '127.0.0.1:0', ...(opts.extraArgs ?? [])],
    dir,
  );
  const log = opts.log ?? silentLogger();
  const upstream = await chooseUpstream(config, log);
  const bastion = await startBastion(config, log, upstream.target);
  const agentName = 'test-agent';
  const { token } = await bastion.store.agents.createAgent(agentName);
  const kubeconfigText = bastion.agentKubeconfig(agentName, token);
  const agentKubeconfig = join(dir, 'agent.kubeconfig');
  writeFileSync(agentKubeconfig, kubeconfigText, { mode: 0o600 });
  return {
    bastion,
    sim: opts.sim ?? upstream.sim!,
    dir,
    agentName,
    agentToken: token,
    agentKubeconfig,
    auditCount: async () => (await bastion.store.audit.head()).lastId,
    auditSince: (afterId) => bastion.store.audit.query({ afterId, limit: 10_000 }),
    rawRequest: (method, path, headers = {}, tokenOverride) =>
      new Promise((resolve, reject) => {
        const req = https.request(
          `${bastion.kubeUrl}${path}`,
          { method, ca: bastion.tls.caPem, headers: { Authorization: `Bearer ${tokenOverride ?? token}`, ...headers } },
          (res) => {
            let body = '';
            res.on('data', (d: Buffer) => (body += d.toString()));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
          },
        );
        req.on('error', reject);
        req.end();
      }),
    stop: async () => {
      await bastion.stop();
      await upstream.stop();
    },
  };
}
