import { configDefaults, defineConfig } from 'vitest/config';

/**
 * Tests under src/ that drive real outside programs (kubectl binaries, asciinema, the CLI as a
 * process): they run with the end-to-end tests, not with the unit tests.
 */
const E2E_IN_SRC = [
  'src/transport/spdy/interop.test.ts', // real kubectl 1.27 / 1.33 over SPDY
  'src/sim/http/protobuf.test.ts', // real kubectl against a started sim
  'src/recording/asciinema-interop.test.ts', // Debian's asciinema under script(1)
  'src/cli/approvals.test.ts', // runs the approvals CLI as a child process
];

export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Real kubectl processes and PTYs: keep parallelism modest on 2-core machines.
    maxWorkers: 2,
    reporters: ['default', './test/helpers/summary-reporter.ts'],
    projects: [
      {
        extends: true,
        test: {
          // In-process tests of one module or a few (fakes, in-memory sockets, a local sim):
          // `npm run test:unit`.
          name: 'unit',
          include: ['src/**/*.test.ts', 'test/architecture/**/*.test.ts'],
          exclude: [...configDefaults.exclude, ...E2E_IN_SRC],
        },
      },
      {
        extends: true,
        test: {
          // The built bastion, real kubectl, tmux, Chromium and the CLI.
          name: 'e2e',
          include: ['test/**/*.test.ts', ...E2E_IN_SRC],
          exclude: [...configDefaults.exclude, 'test/architecture/**'],
        },
      },
    ],
  },
});
