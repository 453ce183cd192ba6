// Interop: Debian's asciinema (2.x, Python) must print, with `asciinema cat`, exactly the bytes the
// session wrote to stdout and stderr. `asciinema cat` opens /dev/tty, so it runs under script(1).
// Needs the `asciinema` and `bsdutils` (script) packages (.ci/run installs them); without them it fails.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exitCodeStatus } from '../protocol/status.js';
import { convertCast } from './convert.js';
import { createRecorder } from './recorder.js';

const have = (cmd: string): boolean => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;

function asciinemaCat(castPath: string, outPath: string): Buffer {
  const q = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;
  execFileSync('script', ['-qec', `asciinema cat ${q(castPath)} > ${q(outPath)}`, '/dev/null'], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, LC_ALL: 'C.UTF-8', LANG: 'C.UTF-8' },
    timeout: 30_000,
  });
  return readFileSync(outPath);
}

describe('asciinema cat (Debian asciinema 2.x) prints the recorded bytes', () => {
  let dir: string;
  beforeAll(() => {
    // A missing peer is a failure, not a skip: CI must run this.
    expect(have('asciinema') && have('script'), 'install the asciinema and bsdutils packages').toBe(true);
    dir = mkdtempSync(join(tmpdir(), 'kb-asciinema-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  // Everything a terminal session plausibly sends, split across frames mid-character.
  const stdoutText =
    '\u001b[1;32muser@pod\u001b[0m:~$ ls\r\n' +
    'файл.txt  文件.txt  🙂👍🏽 ẞ\r\n' +
    'tab\there "quotes" \\backslash\\ \u2028\u2029 \u007f \u0085 \u0007bell\r\n' +
    '\u001b]0;title\u0007\u001b[?2004h$ ';
  const stderrText = 'warning: ошибка ✗\n';

  async function record(format: 'v2' | 'v3', name: string): Promise<{ castPath: string; expected: Buffer }> {
    const rec = createRecorder({
      dir: join(dir, name),
      approvalId: 'apr_interop',
      sessionId: 'ses_interop',
      format,
      recordStdin: true,
      header: { agent: 'ci', namespace: 'default', pod: 'web', container: 'app', command: ['bash', '-l'], tty: true, transport: 'spdy', protocol: 'v4.channel.k8s.io' },
    });
    const out = Buffer.from(stdoutText);
    const err = Buffer.from(stderrText);
    rec.resize({ width: 120, height: 40 });
    rec.stdin(Buffer.from('ls\r'));
    const expected: Buffer[] = [];
    // stdout in 7-byte frames (splitting multi-byte characters), stderr between two of them
    for (let i = 0; i < out.length; i += 7) {
      rec.stdout(out.subarray(i, i + 7));
      expected.push(out.subarray(i, i + 7));
      if (i === 42) {
        rec.stderr(err);
        expected.push(err);
      }
    }
    rec.marker('warning: approval expires in 60s');
    rec.resize({ width: 80, height: 24 });
    await rec.end({ reason: 'completed', exitCode: 0, status: exitCodeStatus(0), bytesIn: 3, bytesOut: out.length + err.length });
    return { castPath: rec.castPath, expected: Buffer.concat(expected) };
  }

  it('v2 recorded by the bastion', async () => {
    const { castPath, expected } = await record('v2', 'v2');
    const printed = asciinemaCat(castPath, join(dir, 'v2.out'));
    expect(printed.toString('hex')).toBe(expected.toString('hex'));
  });

  it('v3 recorded by the bastion, exported to v2 by the converter', async () => {
    const { castPath, expected } = await record('v3', 'v3');
    const v2Path = join(dir, 'converted.cast');
    writeFileSync(v2Path, convertCast(readFileSync(castPath, 'utf8'), 'v2'));
    const printed = asciinemaCat(v2Path, join(dir, 'v3.out'));
    expect(printed.toString('hex')).toBe(expected.toString('hex'));
  });
});
