#!/usr/bin/env node
// Thin launcher: the CLI lives in dist/ after `npm run build`.
import { main } from '../dist/cli/main.js';

main(process.argv.slice(2)).then(
  (code) => {
    if (typeof code === 'number') process.exitCode = code;
  },
  (err) => {
    process.stderr.write(`kube-bastion: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
