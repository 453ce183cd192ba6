// The composition root of `kube-bastion serve`: builds every part from the frozen config and wires
// them together. Each part keeps its one job; this file only connects them.
import { mkdir, readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { hostname } from 'node:os';
import type { ServeConfig } from './config.js';
import type { Logger } from '../observability/log.js';
import { createBastionMetrics, type BastionMetrics } from '../observability/metrics.js';
import { openStore, agentPrincipal, type SqliteStore } from '../store/index.js';
import { decideFor, DEFAULT_RECORDING, PolicyHolder, type LoadedPolicy } from '../policy/index.js';
import { loadEndpointTls, type EndpointTls } from '../tls/material.js';
import type { UpstreamTarget } from '../upstream/upstream.js';
import { KubeEndpoint } from '../endpoint/kube-endpoint.js';
import { aggregateAuditEvent, requestAuditEvent } from '../endpoint/audit-row.js';
import { ControlEndpoint } from '../api/control-endpoint.js';
import { SqliteApprovalService } from '../approvals/service.js';
import { webhookNotifier } from '../approvals/webhook.js';
import { HoldManager } from '../approvals/holds.js';
import { loadOrCreateSigningKey, type SigningKey } from '../evidence/signing-key.js';
import { CheckpointWriter, checkpointsPath } from '../evidence/checkpoints.js';
import { auditVerifier } from '../evidence/audit-trust.js';
import { LIFE_CYCLE_EVENTS } from '../evidence/record.js';
import { recorderFactory } from '../recording/factory.js';
import { ForwardRecording } from '../recording/forward-recorder.js';
import { closeInterruptedSessions } from '../session/recovery.js';
import { sessionRows } from '../session/rows.js';
import { renderKubeconfig } from './kubeconfig.js';
import { listenFor } from '../net/listen.js';

export interface RunningBastion {
  readonly config: ServeConfig;
  readonly store: SqliteStore;
  readonly policy: PolicyHolder;
  readonly metrics: BastionMetrics;
  readonly approvals: SqliteApprovalService;
  readonly tls: EndpointTls;
  readonly upstream: UpstreamTarget;
  readonly kubeUrl: string;
  /** What issued kubeconfigs point at: --public-url, else the bound address (wildcards as loopback). */
  readonly publicUrl: string;
  readonly controlUrl: string;
  /** The key that signs evidence and audit checkpoints (published: serve banner, GET /v1/signing-key). */
  readonly signingKey: Pick<SigningKey, 'keyId' | 'fingerprint' | 'publicKeyPem'>;
  /** Signs the audit head into <dataDir>/audit-checkpoints.jsonl. */
  readonly checkpoints: CheckpointWriter;
  /** A kubeconfig (YAML) for an agent token, pointing at the public URL. */
  agentKubeconfig(agentName: string, token: string): string;
  /** Graceful stop: requests in flight may finish for the configured grace period. */
  stop(): Promise<void>;
}

function servingHosts(config: ServeConfig): { dns: string[]; ips: string[] } {
  const dns = new Set(['localhost']);
  const ips = new Set(['127.0.0.1', '::1']);
  const add = (h: string) => (isIP(h) ? ips : dns).add(h);
  if (config.listen.host !== '0.0.0.0' && config.listen.host !== '::') add(config.listen.host);
  else dns.add(hostname());
  if (config.publicUrl) add(new URL(config.publicUrl).hostname.replace(/^\[|\]$/g, ''));
  for (const san of config.tlsSans) add(san);
  return { dns: [...dns], ips: [...ips] };
}

function recordPolicy(store: SqliteStore, policy: LoadedPolicy, log: Logger): Promise<void> {
  return store.policyVersions
    .recordPolicyVersion({ hash: policy.hash, source: policy.text, origin: policy.origin })
    .then(() => store.audit.append({ event: 'policy.loaded', actor: 'system', policyHash: policy.hash, details: { origin: policy.origin } }))
    .then(() => log.info({ policyHash: policy.hash, origin: policy.origin }, 'policy loaded'));
}

/**
 * Starts the bastion in front of `upstream` (a real cluster from a kubeconfig, or the simulated
 * one: the caller chooses, so nothing here knows the simulator).
 */
export async function startBastion(config: ServeConfig, log: Logger, upstream: UpstreamTarget): Promise<RunningBastion> {
  await mkdir(config.dataDir, { recursive: true, mode: 0o700 });
  await mkdir(config.recordingsDir, { recursive: true });
  const metrics = createBastionMetrics();
  const policy = new PolicyHolder(config.policyFile ? { path: config.policyFile } : {});
  const store = openStore(config.dataDir, {
    auditBatch: {
      // Loud, and fail closed: the endpoint forwards nothing until a retry commits the queued rows.
      onFailure: (err, queued) => log.error({ err, queued }, 'audit batch commit failed; refusing requests until the audit log can commit'),
      onRecovered: (committed) => log.warn({ committed }, 'audit batch committed again; serving requests'),
    },
  });
  const cleanups: Array<() => Promise<void>> = [async () => store.close(), async () => policy.close()];
  try {
    await recordPolicy(store, policy.current, log);
    metrics.policyReloads.inc({ result: 'ok' });
    policy.on('loaded', (next) => {
      metrics.policyReloads.inc({ result: 'ok' });
      recordPolicy(store, next, log).catch((err: unknown) => log.error({ err }, 'recording policy version failed'));
    });
    policy.on('error', (err) => {
      metrics.policyReloads.inc({ result: 'error' });
      log.error({ code: err.code, message: err.message }, 'policy reload rejected; the previous version stays active');
    });

    await closeInterruptedSessions(store, log, config.recordingsDir);
    const signingKey = loadOrCreateSigningKey(config.dataDir);
    const checkpoints = new CheckpointWriter({
      audit: store.audit,
      key: signingKey,
      file: checkpointsPath(config.dataDir),
      ...(config.checkpointWebhookUrl ? { webhookUrl: config.checkpointWebhookUrl } : {}),
      intervalMs: config.checkpointIntervalSeconds * 1000,
      log,
    });
    await checkpoints.start();
    // After the endpoints stop (they are put before it) and before the store closes: the last head.
    cleanups.unshift(async () => void (await checkpoints.close()));
    // Before that last head: the rows of the last batch are committed (and so covered by it).
    cleanups.unshift(async () => {
      const queued = store.auditBatch.queued;
      try {
        store.auditBatch.close();
      } catch (err) {
        log.error({ err, lost: queued }, 'audit rows could not be committed at shutdown');
      }
    });
    const approvals = new SqliteApprovalService({
      approvals: store.approvals,
      agents: store.agents,
      ownerMayApprove: config.ownerMayApprove,
      abandonGraceSeconds: config.abandonGraceSeconds,
      onError: (err) => log.error({ err }, 'approval service error'),
    });
    cleanups.push(async () => approvals.close());
    // Every decision is signed into a checkpoint at once (waiter and use counts write no audit row).
    const decisions = new Set<string>(LIFE_CYCLE_EVENTS);
    approvals.on('changed', (_a, change) => {
      if (decisions.has(change.event)) checkpoints.request('approval');
    });
    // Held requests of an earlier run had their connections cut when it stopped: nobody waits on them.
    for (const pending of await approvals.list({ state: 'pending' })) await approvals.nobodyWaiting(pending.id);
    let controlUrl = '';
    const holds = new HoldManager(approvals, {
      holdSeconds: config.holdTimeoutSeconds,
      maxPendingPerAgent: config.maxPendingPerAgent,
      ...(config.webhookUrl ? { onPending: webhookNotifier(config.webhookUrl, () => controlUrl, log) } : {}),
      log,
    });

    const recorderFor = recorderFactory({
      dir: config.recordingsDir,
      settings: () => policy.current.document.recording ?? DEFAULT_RECORDING,
      sessions: store.sessions,
      log,
    });

    const tls = await loadEndpointTls(config.dataDir, servingHosts(config), config.tls);
    const kube = new KubeEndpoint({
      host: config.listen.host,
      port: config.listen.port,
      tls: { cert: tls.cert, key: tls.key },
      upstream,
      agents: {
        authenticateAgent: async (token) => {
          const agent = await store.agents.authenticateAgent(token);
          return agent && agentPrincipal(agent);
        },
      },
      policy: { decide: (req, ctx) => decideFor(policy.current, req, ctx) },
      audit: {
        record: (row) => store.audit.append(requestAuditEvent(row)).then(() => undefined),
        recordBatched: (row) => store.auditBatch.append(requestAuditEvent(row)).then(() => undefined),
        accepting: () => store.auditBatch.healthy,
        recordAggregate: (aggregate) => store.audit.append(aggregateAuditEvent(aggregate)).then(() => undefined),
      },
      failureAudit: config.auditFailures,
      approvals,
      holds,
      // A burst of session ends shares one checkpoint (requested once each end's rows commit).
      sessions: sessionRows({ sessions: store.sessions, audit: store.audit }, { recordingsDir: config.recordingsDir, ended: () => checkpoints.request('session-end') }),
      sinks: (session) => [recorderFor(session)],
      recordConnection: (session, seq, port, startedAt) => new ForwardRecording({ dir: config.recordingsDir, approvalId: session.approvalId, sessionId: session.id, seq, port, startedAt }),
      metrics,
      log,
      agentActive: async (id) => (await store.agents.getAgentById(id))?.revokedAt === null,
      sessionSetupSeconds: config.sessionSetupSeconds,
      impersonate: config.impersonate,
      expiryWarningSeconds: config.expiryWarningSeconds,
    });
    await listenFor('--listen', config.listen, () => kube.listen());
    cleanups.unshift(() => kube.close(config.shutdownGraceSeconds * 1000));
    const publicUrl = config.publicUrl ?? kube.url.replace('://0.0.0.0:', '://127.0.0.1:').replace('://[::]:', '://127.0.0.1:');
    const agentKubeconfig = (agentName: string, token: string): string =>
      renderKubeconfig({ server: publicUrl, caPem: tls.caPem ?? '', token, name: `kube-bastion-${agentName}` });

    const control = new ControlEndpoint(
      {
        agents: store.agents,
        approvals,
        sessions: store.sessions,
        recordingsDir: config.recordingsDir,
        signingKey,
        checkpointsFile: checkpointsPath(config.dataDir),
        verifyAudit: auditVerifier({
          snapshot: store.readSnapshot,
          checkpointsFile: checkpointsPath(config.dataDir),
          publicKeyPem: () => signingKey.publicKeyPem,
        }),
        users: store.users,
        audit: store.audit,
        policyVersions: store.policyVersions,
        currentPolicy: () => ({ hash: policy.current.hash, origin: policy.current.origin }),
        metrics: metrics.exposition,
        agentKubeconfig,
        log,
      },
      { host: config.controlListen.host, port: config.controlListen.port, ...(config.controlTls.certFile ? { tls: await readControlTls(config) } : {}) },
    );
    await listenFor('--control-listen', config.controlListen, () => control.listen());
    controlUrl = control.url;
    cleanups.unshift(() => control.close());
    log.info({ kube: kube.url, control: control.url, upstream: upstream.description }, 'kube-bastion serving');

    let stopping: Promise<void> | undefined;
    return {
      config,
      store,
      policy,
      metrics,
      approvals,
      tls,
      upstream,
      kubeUrl: kube.url,
      publicUrl,
      controlUrl: control.url,
      signingKey,
      checkpoints,
      agentKubeconfig,
      stop: () => (stopping ??= runCleanups(cleanups)),
    };
  } catch (err) {
    await runCleanups(cleanups);
    throw err;
  }
}

async function runCleanups(cleanups: Array<() => Promise<void>>): Promise<void> {
  for (const cleanup of cleanups) await cleanup().catch(() => {});
}

async function readControlTls(config: ServeConfig): Promise<{ cert: string; key: string }> {
  return { cert: await readFile(config.controlTls.certFile!, 'utf8'), key: await readFile(config.controlTls.keyFile!, 'utf8') };
}
