// `kube-bastion serve`: start the bastion, print what a newcomer needs next, reload the policy on
// SIGHUP, shut down gracefully on SIGTERM/SIGINT.
import { existsSync } from 'node:fs';
import { writeFile, mkdir } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { parseServeConfig, SERVE_USAGE } from '../app/config.js';
import { createLogger } from '../observability/log.js';
import { startBastion, type RunningBastion } from '../app/bastion.js';

const DEMO_AGENT = 'demo';

async function bootstrap(b: RunningBastion): Promise<string[]> {
  const lines: string[] = [];
  const cwd = process.cwd();
  const show = (p: string) => (relative(cwd, p).startsWith('..') ? p : relative(cwd, p));
  // A demo agent only on the embedded simulated cluster: never invent identities for a real cluster.
  if (b.sim) {
    const path = join(b.config.dataDir, 'agents', `${DEMO_AGENT}.kubeconfig`);
    if ((await b.store.agents.listAgents()).length === 0) {
      const { agent, token } = await b.store.agents.createAgent(DEMO_AGENT);
      await b.store.audit.append({ event: 'agent.created', actor: 'system:bootstrap', agent: { id: agent.id, name: agent.name } });
      await mkdir(join(b.config.dataDir, 'agents'), { recursive: true, mode: 0o700 });
      await writeFile(path, b.agentKubeconfig(agent.name, token), { mode: 0o600 });
    }
    if (existsSync(path)) {
      lines.push(`  demo agent kubeconfig: ${show(path)}`);
      lines.push(`    try: kubectl --kubeconfig ${show(path)} get pods -A`);
      lines.push(`         kubectl --kubeconfig ${show(path)} get secret -n demo db-credentials   # refused: needs approval`);
    }
  }
  if ((await b.store.users.listUsers()).length === 0) {
    const { user, token } = await b.store.users.createUser('admin', 'admin');
    await b.store.audit.append({ event: 'user.created', actor: 'system:bootstrap', details: { user: user.name, role: user.role } });
    lines.push(`  admin token (shown once; create more with kube-bastion user add): ${token}`);
    lines.push(`    try: curl -H "Authorization: Bearer ${token}" ${b.controlUrl}/v1/agents`);
  }
  return lines;
}

export async function runServe(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(`${SERVE_USAGE}\n`);
    return 0;
  }
  const config = parseServeConfig(argv);
  const log = createLogger(config.logLevel, process.stderr);
  const bastion = await startBastion(config, log);
  const extra = await bootstrap(bastion);
  process.stdout.write(
    [
      'kube-bastion is serving',
      `  Kubernetes endpoint: ${bastion.publicUrl}  (upstream: ${bastion.upstream.description})`,
      `  control API:         ${bastion.controlUrl}/v1   metrics: ${bastion.controlUrl}/metrics`,
      `  policy:              ${bastion.policy.current.origin} sha256:${bastion.policy.current.hash.slice(0, 12)} (SIGHUP reloads)`,
      ...extra,
      '',
    ].join('\n'),
  );

  const onHup = (): void => {
    const result = bastion.policy.reload();
    log.info({ status: result.status, policyHash: result.policy.hash }, 'policy reload (SIGHUP)');
  };
  process.on('SIGHUP', onHup);
  await new Promise<void>((done) => {
    const stop = (signal: string): void => {
      process.off('SIGTERM', onTerm);
      process.off('SIGINT', onInt);
      log.info({ signal, graceSeconds: config.shutdownGraceSeconds }, 'shutting down');
      done();
    };
    const onTerm = () => stop('SIGTERM');
    const onInt = () => stop('SIGINT');
    process.on('SIGTERM', onTerm);
    process.on('SIGINT', onInt);
  });
  process.off('SIGHUP', onHup);
  await bastion.stop();
  log.info('stopped');
  return 0;
}
