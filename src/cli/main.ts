// The `kube-bastion` command line: one sub-command per module, errors with stable codes.
import { readFileSync } from 'node:fs';
import { isBastionError } from '../errors/index.js';
import { runSim } from './sim.js';
import { runServe } from './serve.js';
import { runApprovals } from './approvals.js';
import { runSessions } from './sessions.js';
import { runExport } from './export.js';
import { runVerify } from './verify.js';
import { runAgent, runAudit, runUser } from './admin.js';
import { tolerateClosedStdio } from './stdio.js';

const USAGE = `usage: kube-bastion <command> [options]

commands:
  serve                 run the bastion (kube-bastion serve --help)
  agent add|list|revoke
                        create an agent identity and write its kubeconfig; list or revoke agents
  user add|list|disable|rotate
                        create a control-endpoint user (approver, reviewer, admin); list users,
                        disable one, or rotate a token
  approvals ...         list, get (show), grant, approve, deny, revoke, watch approvals (kube-bastion approvals --help)
  sessions list|show    recorded sessions; one with every hash and a port-forward's connections (kube-bastion sessions --help)
  record ID             an approval's review record: who acted, which rule, who decided, scope kept, what happened
  export ...            write a signed evidence directory (kube-bastion export --help)
  verify DIR            check an evidence directory's hashes, and its signature by the bastion's pinned key
  audit verify          check the audit log's hash chain against its signed checkpoints, and the tables against it
  sim                   run the simulated cluster alone (kube-bastion sim --help)

Every command answers --help; kube-bastion --version prints the version.`;

/** `kube-bastion <version>` from the package.json two levels up (the repo root, from src/cli or dist/cli). */
function versionLine(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { name?: string; version?: string };
  return `${pkg.name ?? 'kube-bastion'} ${pkg.version ?? 'unknown'}`;
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  tolerateClosedStdio();
  try {
    switch (command) {
      case 'serve':
        return await runServe(rest);
      case 'agent':
        return await runAgent(rest);
      case 'user':
        return await runUser(rest);
      case 'approvals':
        return await runApprovals(rest);
      case 'sessions':
        return await runSessions(rest);
      case 'record':
        return await runApprovals(['record', ...rest]);
      case 'export':
        return await runExport(rest);
      case 'verify':
        return await runVerify(rest);
      case 'audit':
        return await runAudit(rest);
      case 'sim':
        return await runSim(rest);
      case '--version':
      case '-V':
        process.stdout.write(`${versionLine()}\n`);
        return 0;
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
