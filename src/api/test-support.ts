// A ControlEndpoint on 127.0.0.1:0 over a real store, as the bastion wires it, for API and CLI tests.
import { auditVerifier } from '../evidence/audit-trust.js';
import { checkpointsPath } from '../evidence/checkpoints.js';
import { generateSigningKey, lazySigningKey, resolveSigningKey, type SigningKeySource } from '../evidence/signing-key.js';
import { silentLogger } from '../observability/log.js';
import { createBastionMetrics } from '../observability/metrics.js';
import type { ApprovalService } from '../model/approval.js';
import type { SqliteStore } from '../store/index.js';
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
  const signingKey: SigningKeySource = dataDir
    ? lazySigningKey(dataDir)
    : () => {
        throw new Error('no evidence in this test');
      };
  const control = new ControlEndpoint(
    {
      agents: store.agents,
      users: store.users,
      audit: store.audit,
      policyVersions: store.policyVersions,
      currentPolicy: () => ({ hash: '0'.repeat(64), origin: 'built-in' }),
      metrics: createBastionMetrics().exposition,
      agentKubeconfig: () => 'kubeconfig',
      log: silentLogger(),
      approvals: parts.approvals,
      sessions: store.sessions,
      recordingsDir: parts.recordingsDir ?? '',
      signingKey,
      ...(dataDir ? { checkpointsFile: checkpointsPath(dataDir) } : {}),
      verifyAudit: auditVerifier({
        snapshot: store.readSnapshot,
        checkpointsFile: dataDir ? checkpointsPath(dataDir) : '/nonexistent/audit-checkpoints.jsonl',
        publicKeyPem: () => (dataDir ? resolveSigningKey(signingKey).publicKeyPem : generateSigningKey().publicKeyPem),
      }),
    },
    { host: '127.0.0.1', port: 0 },
  );
  await control.listen();
  return control;
}
