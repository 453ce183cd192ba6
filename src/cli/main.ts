// The `kube-bastion` command line: one sub-command per module, errors with stable codes.
import { isBastionError } from '../errors.js';
import { runSim } from './sim.js';

const USAGE = `usage: kube-bastion <command> [options]

commands:
  sim     run the simulated cluster alone (kube-bastion sim --help)

More commands (serve, agent, user, approvals, export, verify, audit) arrive with the gateway.`;

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'sim':
        return await runSim(rest);
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        process.stdout.write(`${USAGE}\n`);
        return command === undefined ? 2 : 0;
      default:
        process.stderr.write(`kube-bastion: unknown command "${command}"\n\n${USAGE}\n`);
        return 2;
    }
  } catch (err) {
    // parseArgs throws TypeErrors with a code for unknown/malformed flags.
    const code = (err as { code?: string }).code;
    if (isBastionError(err) || (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS'))) {
      process.stderr.write(`kube-bastion ${command}: ${(err as Error).message}\n`);
      return 2;
    }
    throw err;
  }
}
