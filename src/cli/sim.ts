// `kube-bastion sim`: runs the simulated cluster alone and writes a kubeconfig for it once ready.
import { parseArgs } from 'node:util';
import { resolve } from 'node:path';
import { SimCluster } from '../sim/cluster.js';
import { writeKubeconfig } from '../app/kubeconfig.js';
import { parseListen } from '../net/address.js';
import { listenFor } from '../net/listen.js';
import { BastionError, ErrorCode } from '../errors/index.js';

export const SIM_USAGE = `usage: kube-bastion sim --listen HOST:PORT --kubeconfig-out FILE [--token TOKEN] [--work-dir DIR] [--request-log FILE]

Runs the simulated cluster: an HTTPS, API-server-compatible server whose pods are real processes.
Writes FILE (a kubeconfig with the CA and a bearer token) once it is ready; stops on SIGTERM/SIGINT.`;

export async function runSim(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      listen: { type: 'string', default: '127.0.0.1:6444' },
      'kubeconfig-out': { type: 'string' },
      token: { type: 'string' },
      'work-dir': { type: 'string' },
      'request-log': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    process.stdout.write(`${SIM_USAGE}\n`);
    return 0;
  }
  const listen = parseListen('--listen', values.listen);
  const out = values['kubeconfig-out'];
  if (!out) throw new BastionError(ErrorCode.USAGE, `--kubeconfig-out FILE is required\n\n${SIM_USAGE}`);

  const sim = new SimCluster({
    host: listen.host,
    port: listen.port,
    ...(values.token ? { token: values.token } : {}),
    ...(values['work-dir'] ? { workDir: resolve(values['work-dir']) } : {}),
    ...(values['request-log'] ? { requestLogFile: resolve(values['request-log']) } : {}),
    onError: (err) => process.stderr.write(`sim: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`),
  });
  try {
    // An address in use is named with the flag to change, as serve does.
    await listenFor('--listen', listen, () => sim.start());
  } catch (err) {
    await sim.stop().catch(() => undefined);
    throw err;
  }
  await writeKubeconfig(resolve(out), { server: sim.url, caPem: sim.caPem, token: sim.token, name: 'kube-bastion-sim' });
  process.stdout.write(`simulated cluster listening on ${sim.url}\nkubeconfig: ${resolve(out)}\ntry: kubectl --kubeconfig ${resolve(out)} get pods -A\n`);

  await new Promise<void>((done) => {
    const stop = (): void => {
      process.off('SIGTERM', stop);
      process.off('SIGINT', stop);
      done();
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  });
  await sim.stop();
  return 0;
}
