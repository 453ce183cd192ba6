// A ControlEndpoint on 127.0.0.1:0 over a real store, as the bastion wires it, for API and CLI tests.
import { lazySigningKey } from '../evidence/signing-key.js';
import { silentLogger } from '../observability/log.js';
import { Registry } from '../observability/metrics.js';
import type { ApprovalService } from '../model/approval.js';
import type { SqliteStore } from '../store/index.js';
import { PROMETHEUS_CONTENT_TYPE } from './contract.js';
import { ControlEndpoint } from './control-endpoint.js';

export interface TestControlParts {
  store: SqliteStore;
  approvals: ApprovalService;
  /** Where recordings live; '' when the test serves none. */
  recordingsDir?: string;
  /** Where the evidence signing key lives; without it, evidence routes fail. */
  dataDir?: string;
}

export async function startTestControl(parts: TestControlParts): Promise<ControlEndpoint> {
  const { store, dataDir } = parts;
  const control = new ControlEndpoint(
    {
      agents: store.agents,
      users: store.users,
      audit: store.audit,
      policyVersions: store.policyVersions,
      currentPolicy: () => ({ hash: '0'.repeat(64), origin: 'built-in' }),
      metrics: { contentType: PROMETHEUS_CONTENT_TYPE, render: () => new Registry().render() },
      agentKubeconfig: () => 'kubeconfig',
      log: silentLogger(),
      approvals: parts.approvals,
      sessions: store.sessions,
      recordingsDir: parts.recordingsDir ?? '',
      signingKey: dataDir
        ? lazySigningKey(dataDir)
        : () => {
            throw new Error('no evidence in this test');
          },
    },
    { host: '127.0.0.1', port: 0 },
  );
  await control.listen();
  return control;
}
