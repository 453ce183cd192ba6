// `kube-bastion serve`: start the bastion, print what a newcomer needs next, reload the policy on
// SIGHUP, shut down gracefully on SIGTERM/SIGINT.
import { existsSync } from 'node:fs';
import { writeFile, mkdir } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { parseServeConfig, SERVE_USAGE } from '../app/config.js';
import { createLogger } from '../observability/log.js';
import { startBastion, type RunningBastion } from '../app/bastion.js';
import type { ServeConfig } from '../app/config.js';
import type { Logger } from '../observability/log.js';
import { SimCluster } from '../sim/cluster.js';
import { formatArgv } from './approvals.js';
import { upstreamFromCredentials, upstreamFromKubeconfigFile, type UpstreamTarget } from '../upstream/upstream.js';

const DEMO_AGENT = 'demo';

export interface ChosenUpstream {
  target: UpstreamTarget;
  /** The embedded simulated cluster, when no upstream kubeconfig was given. */
  sim: SimCluster | undefined;
  /** Stops the embedded simulated cluster (after the bastion stopped); nothing for a real one. */
  stop(): Promise<void>;
}

/** `--upstream-kubeconfig` when given, else the simulated cluster started in-process on loopback. */
export async function chooseUpstream(config: ServeConfig, log: Logger): Promise<ChosenUpstream> {
  if (config.upstreamKubeconfig) {
    return { target: upstreamFromKubeconfigFile(config.upstreamKubeconfig, config.upstreamContext), sim: undefined, stop: async () => {} };
  }
  const sim = new SimCluster({ host: '127.0.0.1', port: 0, onError: (err) => log.error({ err }, 'simulated cluster error') });
  await sim.start();
  return {
    target: upstreamFromCredentials(sim.url, sim.caPem, sim.token, `embedded simulated cluster at ${sim.url}`),
    sim,
    stop: () => sim.stop(),
  };
}

/** A path as typed from the current directory: relative below it, absolute elsewhere. */
function shown(p: string): string {
  const rel = relative(process.cwd(), p);
  return rel.startsWith('..') ? p : rel === '' ? '.' : rel;
}

/**
 * The first-start and restart lines of the banner: the demo agent's kubeconfig and what its
 * requests do, the first admin token (shown once), and at a restart how to get a new admin token.
 */
export async function bootstrap(b: RunningBastion, embedded: boolean): Promise<string[]> {
  const lines: string[] = [];
  const hold = b.config.holdTimeoutSeconds;
  const adminLines: string[] = [];
  if ((await b.store.users.listUsers()).length === 0) {
    const { user, token } = await b.store.users.createUser('admin', 'admin');
    await b.store.audit.append({ event: 'user.created', actor: 'system:bootstrap', details: { user: user.name, role: user.role } });
    adminLines.push(`  admin token (shown once; create more with kube-bastion user add): ${token}`);
    adminLines.push(`    try: curl -H "Authorization: Bearer ${token}" ${b.controlUrl}/v1/agents`);
  } else {
    // Tokens are stored hashed: a lost one cannot be shown again, but a new admin can be made offline.
    adminLines.push(`  admin token: shown only at the first start; lost it? create another admin (works while serving):`);
    adminLines.push(`    kube-bastion user add NAME --role admin --data-dir ${formatArgv([shown(b.config.dataDir)])}`);
  }
  // A demo agent only on the embedded simulated cluster: never invent identities for a real cluster.
  if (embedded) {
    const path = join(b.config.dataDir, 'agents', `${DEMO_AGENT}.kubeconfig`);
    if ((await b.store.agents.listAgents()).length === 0) {
      // The demo agent is the bastion's own, run by nobody: no owner, so the first admin can approve
      // its requests in the quick start (an owner may not approve their own agent's).
      const { agent, token } = await b.store.agents.createAgent(DEMO_AGENT, null);
      await b.store.audit.append({ event: 'agent.created', actor: 'system:bootstrap', agent: { id: agent.id, name: agent.name }, details: { owner: null } });
      await mkdir(join(b.config.dataDir, 'agents'), { recursive: true, mode: 0o700 });
      await writeFile(path, b.agentKubeconfig(agent.name, token), { mode: 0o600 });
    }
    if (existsSync(path)) {
      lines.push(`  demo agent kubeconfig: ${shown(path)}`);
      lines.push(`    try: kubectl --kubeconfig ${shown(path)} get pods -A`);
      // What really happens: the request waits while an approver decides, up to the hold timeout.
      lines.push(`         kubectl --kubeconfig ${shown(path)} get secret -n demo db-credentials`);
      lines.push(`           # held until an approver decides (up to ${hold} s, --hold-timeout): kube-bastion approvals list, then approve ID`);
    }
  }
  return [...lines, ...adminLines];
}

export async function runServe(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(`${SERVE_USAGE}\n`);
    return 0;
  }
  const config = parseServeConfig(argv);
  const log = createLogger(config.logLevel, process.stderr);
  const upstream = await chooseUpstream(config, log);
  let bastion: RunningBastion;
  try {
    bastion = await startBastion(config, log, upstream.target);
  } catch (err) {
    await upstream.stop();
    throw err;
  }
  const extra = await bootstrap(bastion, upstream.sim !== undefined);
  process.stdout.write(
    [
      'kube-bastion is serving',
      `  Kubernetes endpoint: ${bastion.publicUrl}  (upstream: ${bastion.upstream.description})`,
      `  control API:         ${bastion.controlUrl}/v1   metrics: ${bastion.controlUrl}/metrics`,
      `  policy:              ${bastion.policy.current.origin} sha256:${bastion.policy.current.hash.slice(0, 12)} (SIGHUP reloads)`,
      // Published so reviewers can pin it: kube-bastion verify DIR --fingerprint ...
      `  signing key:         ${bastion.signingKey.fingerprint}  (evidence and audit checkpoints; ${bastion.controlUrl}/v1/signing-key)`,
      ...extra,
      '',
    ].join('\n'),
  );

  const onHup = (): void => {
    const result = bastion.policy.reload();
    log.info({ status: result.status, policyHash: result.policy.hash }, 'policy reload (SIGHUP)');
  };
  process.on('SIGHUP', onHup);
  // The handlers stay installed until the end: a second Ctrl-C during the grace period must not fall
  // back to Node's default (exit at once), which would skip cutting live sessions with a Status.
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping) {
      log.warn({ signal }, 'already shutting down; live sessions are cut when the grace period ends');
      return;
    }
    stopping = true;
    log.info({ signal, graceSeconds: config.shutdownGraceSeconds }, 'shutting down');
    wake();
  };
  let wake: () => void = () => {};
  const stopped = new Promise<void>((resolve) => (wake = resolve));
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  await stopped;
  try {
    process.off('SIGHUP', onHup);
    await bastion.stop();
    await upstream.stop();
    log.info('stopped');
  } finally {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  }
  return 0;
}
