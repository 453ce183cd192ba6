// The composition root of `kube-bastion serve`: builds every part from the frozen config and wires
// them together. Each part keeps its one job; this file only connects them.
import { mkdir, readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { hostname } from 'node:os';
import type { ServeConfig } from './config.js';
import type { Logger } from '../observability/log.js';
import { createBastionMetrics, type BastionMetrics } from '../observability/metrics.js';
import { openStore, agentPrincipal, type SqliteStore } from '../store/index.js';
import { evaluateWithRule, PolicyHolder, type LoadedPolicy } from '../policy/index.js';
import { loadEndpointTls, type EndpointTls } from '../tls/material.js';
import { upstreamFromCredentials, upstreamFromKubeconfigFile, type UpstreamTarget } from '../upstream/upstream.js';
import { SimCluster } from '../sim/cluster.js';
import { KubeEndpoint } from '../endpoint/kube-endpoint.js';
import type { RequestAuditRecord } from '../endpoint/ports.js';
import { ControlEndpoint } from '../api/control-endpoint.js';
import { PROMETHEUS_CONTENT_TYPE } from '../api/contract.js';
import { SqliteApprovalService } from '../approvals/service.js';
import { webhookNotifier } from '../approvals/webhook.js';
import { HoldManager } from '../approvals/holds.js';
import { loadOrCreateSigningKey } from '../evidence/signing-key.js';
import { DEFAULT_RECORDING } from '../policy/index.js';
import { createRecorder, recordingPaths, recoverRecording, toSessionRecording, type RecordingResult } from '../recording/index.js';
import type { SessionInfo } from '../session/stream-session.js';
import type { SessionSink } from '../model/session.js';
import { renderKubeconfig } from './kubeconfig.js';

export interface RunningBastion {
  readonly config: ServeConfig;
  readonly store: SqliteStore;
  readonly policy: PolicyHolder;
  readonly metrics: BastionMetrics;
  readonly approvals: SqliteApprovalService;
  readonly tls: EndpointTls;
  readonly upstream: UpstreamTarget;
  /** The embedded simulated cluster, when no upstream kubeconfig was given. */
  readonly sim: SimCluster | undefined;
  readonly kubeUrl: string;
  /** What issued kubeconfigs point at: --public-url, else the bound address (wildcards as loopback). */
  readonly publicUrl: string;
  readonly controlUrl: string;
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

export async function startBastion(config: ServeConfig, log: Logger): Promise<RunningBastion> {
  await mkdir(config.dataDir, { recursive: true, mode: 0o700 });
  await mkdir(config.recordingsDir, { recursive: true });
  const metrics = createBastionMetrics();
  const policy = new PolicyHolder(config.policyFile ? { path: config.policyFile } : {});
  const store = openStore(config.dataDir);
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

    // Sessions a crash left open are closed as interrupted before anything new starts; their
    // recordings are made whole (partial tails cut, an interrupted marker added) and hashed.
    for (const session of await store.sessions.markOpenAsInterrupted()) {
      let recovered: Record<string, unknown> = {};
      if (session.castPath && session.rawPath) {
        try {
          const r = recoverRecording({ castPath: session.castPath, rawPath: session.rawPath });
          await store.sessions.setRecording(session.id, { castSha256: r.castSha256, rawSha256: r.rawSha256, channelSha256: r.channelSha256 });
          recovered = { castSha256: r.castSha256, rawSha256: r.rawSha256 };
        } catch (err) {
          log.error({ err, sessionId: session.id }, 'could not recover the recording of an interrupted session');
        }
      }
      await store.audit.append({ event: 'session.end', actor: 'system', sessionId: session.id, approvalId: session.approvalId, agent: { id: session.agentId, name: session.agent }, details: { endReason: 'interrupted', ...recovered } });
      log.warn({ sessionId: session.id }, 'session left open by a previous run marked interrupted');
    }
    const approvals = new SqliteApprovalService({
      approvals: store.approvals,
      agents: store.agents,
      audit: store.audit,
      onError: (err) => log.error({ err }, 'approval service error'),
    });
    cleanups.push(async () => approvals.close());
    let controlUrl = '';
    const holds = new HoldManager(approvals, {
      holdSeconds: config.holdTimeoutSeconds,
      maxPendingPerAgent: config.maxPendingPerAgent,
      ...(config.webhookUrl ? { onPending: webhookNotifier(config.webhookUrl, () => controlUrl, log) } : {}),
      log,
    });

    const recorderFor = (session: SessionInfo): SessionSink => {
      const settings = policy.current.document.recording ?? DEFAULT_RECORDING;
      const saved = (result: RecordingResult): void => {
        if (result.error) log.error({ sessionId: session.id, error: result.error }, 'recording failed; the session was cut');
        const files = result.files?.map((f) => ({ name: f.name, size: f.size, sha256: f.sha256 }));
        store.sessions
          .setRecording(session.id, { ...toSessionRecording(result), ...(files ? { files } : {}) })
          .catch((err: unknown) => log.error({ err, sessionId: session.id }, 'storing the recording hashes failed'));
      };
      // Throws when the files cannot be created: the session is then cut before a byte flows.
      const recorder = createRecorder({
        dir: config.recordingsDir,
        approvalId: session.approvalId,
        sessionId: session.id,
        format: settings.format,
        recordStdin: settings.stdin,
        header: {
          agent: session.agent.name,
          namespace: session.namespace,
          pod: session.pod,
          container: session.container,
          command: session.command,
          tty: session.tty,
          transport: session.transport,
          protocol: session.protocol,
          upstreamProtocol: session.upstreamProtocol,
          ...(session.operation === 'exec' || session.operation === 'attach' ? { operation: session.operation } : {}),
        },
        onFinished: saved,
      });
      // The row knows where the files are from the start, so a crash leaves them findable.
      const paths = recordingPaths(config.recordingsDir, session.approvalId, session.id);
      store.sessions.setRecording(session.id, { castPath: paths.castPath, rawPath: paths.rawPath }).catch((err: unknown) => log.error({ err }, 'storing recording paths failed'));
      return recorder;
    };

    const tls = await loadEndpointTls(config.dataDir, servingHosts(config), config.tls);
    let sim: SimCluster | undefined;
    let upstream: UpstreamTarget;
    if (config.upstreamKubeconfig) {
      upstream = upstreamFromKubeconfigFile(config.upstreamKubeconfig, config.upstreamContext);
    } else {
      sim = new SimCluster({ host: '127.0.0.1', port: 0, onError: (err) => log.error({ err }, 'simulated cluster error') });
      await sim.start();
      const started = sim;
      cleanups.unshift(() => started.stop());
      upstream = upstreamFromCredentials(sim.url, sim.caPem, sim.token, `embedded simulated cluster at ${sim.url}`);
    }

    const kube = new KubeEndpoint({
      host: config.listen.host,
      port: config.listen.port,
      tls: { cert: tls.cert, key: tls.key },
      upstream,
      agents: { authenticateAgent: async (token) => {
        const agent = await store.agents.authenticateAgent(token);
        return agent && agentPrincipal(agent);
      } },
      policy: {
        decide: (req, ctx) => {
          // Clients see the rule's own words; the evaluator's longer reason stays in the logs.
          const { decision, rule } = evaluateWithRule(policy.current, req, ctx);
          const autoApprove = decision.action === 'approval' ? rule?.autoApprove : undefined;
          return { ...decision, reason: rule?.reason ?? '', ...(autoApprove ? { autoApprove } : {}) };
        },
      },
      audit: { record: (row) => store.audit.append(auditInput(row)).then(() => undefined) },
      approvals,
      holds,
      sessions: {
        start: async (input) => {
          const session = await store.sessions.start(input);
          await store.audit.append({ event: 'session.start', actor: `agent:${input.agent.name}`, agent: input.agent, sessionId: session.id, approvalId: input.approvalId, namespace: input.namespace, name: input.pod, stream: input.operation, details: { container: input.container, command: input.command, tty: input.tty, transport: input.transport, protocol: input.protocol } });
          return session;
        },
        end: async (id, end) => {
          const session = await store.sessions.end(id, { reason: end.reason, exitCode: end.exitCode, status: end.status, bytesIn: end.bytesIn, bytesOut: end.bytesOut });
          await store.audit.append({ event: 'session.end', actor: 'system', sessionId: id, approvalId: session.approvalId, agent: { id: session.agentId, name: session.agent }, details: { endReason: end.reason, exitCode: end.exitCode, bytesIn: end.bytesIn, bytesOut: end.bytesOut } });
          return session;
        },
      },
      sinks: (session) => [recorderFor(session)],
      metrics,
      log,
      impersonate: config.impersonate,
      expiryWarningSeconds: config.expiryWarningSeconds,
    });
    await kube.listen();
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
        signingKey: loadOrCreateSigningKey(config.dataDir),
        users: store.users,
        audit: store.audit,
        policyVersions: store.policyVersions,
        currentPolicy: () => ({ hash: policy.current.hash, origin: policy.current.origin }),
        metrics: { contentType: PROMETHEUS_CONTENT_TYPE, render: () => metrics.registry.render() },
        agentKubeconfig,
        log,
      },
      { host: config.controlListen.host, port: config.controlListen.port, ...(config.controlTls.certFile ? { tls: await readControlTls(config) } : {}) },
    );
    await control.listen();
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
      sim,
      kubeUrl: kube.url,
      publicUrl,
      controlUrl: control.url,
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

function auditInput(row: RequestAuditRecord) {
  const r = row.request;
  return {
    event: 'request',
    time: new Date(row.time),
    agent: row.agent,
    source: row.source,
    method: row.method,
    path: row.path,
    verb: r?.verb ?? null,
    apiGroup: r?.kind === 'resource' ? r.apiGroup : null,
    resource: r?.kind === 'resource' ? r.resource : null,
    subresource: r?.kind === 'resource' ? r.subresource : null,
    namespace: r?.kind === 'resource' ? r.namespace : null,
    name: r?.kind === 'resource' ? r.name : null,
    stream: r?.kind === 'resource' ? (r.stream ?? null) : null,
    decision: row.decision,
    rule: row.rule,
    policyHash: row.policyHash,
    approvalId: row.approvalId,
    statusCode: row.status,
    bytesIn: row.bytesIn,
    bytesOut: row.bytesOut,
    durationMs: row.durationMs,
    untrustedClientHints: row.hints,
  } as const;
}
