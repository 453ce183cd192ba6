import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { isBastionError, type BastionError } from '../errors/index.js';
import { builtInPolicy } from './load.js';
import type { LoadedPolicy } from './schema.js';
import { PolicyHolder } from './watcher.js';

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');
const policyText = (rule: string, action = 'allow') => `apiVersion: kube-bastion/v1\nkind: Policy\nrules:\n  - name: ${rule}\n    match: {}\n    action: ${action}\n`;
const BROKEN = 'apiVersion: kube-bastion/v1\nkind: Policy\nrules:\n  - name: x\n    match: {}\n    action: allow-everything\n';

const cleanup: (() => void)[] = [];
afterEach(() => {
  for (const f of cleanup.splice(0)) f();
});

function setup(initial: string, watch = true): { file: string; holder: PolicyHolder } {
  const dir = mkdtempSync(join(tmpdir(), 'kb-policy-watch-'));
  const file = join(dir, 'policy.yaml');
  writeFileSync(file, initial);
  const holder = new PolicyHolder({ path: file, watch, debounceMs: 30 });
  cleanup.push(() => {
    holder.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return { file, holder };
}

async function nextLoaded(holder: PolicyHolder): Promise<[LoadedPolicy, LoadedPolicy]> {
  return (await once(holder, 'loaded')) as [LoadedPolicy, LoadedPolicy];
}

async function nextError(holder: PolicyHolder): Promise<BastionError> {
  const [err] = (await once(holder, 'error')) as [BastionError];
  return err;
}

describe('PolicyHolder', () => {
  it('follows file changes, including files replaced by rename', async () => {
    const { file, holder } = setup(policyText('one'));
    expect(holder.current.hash).toBe(sha256(policyText('one')));

    const loaded = nextLoaded(holder);
    writeFileSync(file, policyText('two'));
    const [next, previous] = await loaded;
    expect(next.hash).toBe(sha256(policyText('two')));
    expect(previous.hash).toBe(sha256(policyText('one')));
    expect(holder.current).toBe(next);
    expect(holder.current.document.rules[0]?.name).toBe('two');

    // Editors write a temporary file and rename it over the original.
    const replaced = nextLoaded(holder);
    writeFileSync(`${file}.tmp`, policyText('three'));
    renameSync(`${file}.tmp`, file);
    expect((await replaced)[0].hash).toBe(sha256(policyText('three')));
  });

  it('rejects a broken version and keeps the active one', async () => {
    const { file, holder } = setup(policyText('good'));
    const good = holder.current;

    const error = nextError(holder);
    writeFileSync(file, BROKEN);
    const err = await error;
    expect(isBastionError(err, 'CONFIG_INVALID')).toBe(true);
    expect(err.message).toContain(`${file}:6:13: rules[0].action: unknown action "allow-everything"`);
    expect(err.message).toContain(`the previous policy (sha256 ${good.hash}) stays active`);
    expect(holder.current).toBe(good);

    // A deleted file is also just a rejected version.
    const gone = nextError(holder);
    rmSync(file);
    expect((await gone).message).toMatch(/ENOENT/);
    expect(holder.current).toBe(good);

    const fixed = nextLoaded(holder);
    writeFileSync(file, policyText('fixed', 'deny'));
    expect((await fixed)[0].document.rules[0]).toMatchObject({ name: 'fixed', action: 'deny' });
  });

  it('does not report a file caught mid-write, and reports a lasting failure once', async () => {
    const { file, holder } = setup(policyText('one'));
    const errors: BastionError[] = [];
    holder.on('error', (err) => errors.push(err));

    const loaded = nextLoaded(holder);
    writeFileSync(file, ''); // what a reader sees between truncate and write
    writeFileSync(file, policyText('two'));
    expect((await loaded)[0].document.rules[0]?.name).toBe('two');
    expect(errors).toEqual([]);

    const reported = nextError(holder);
    writeFileSync(file, BROKEN);
    await reported;
    writeFileSync(join(file, '..', 'unrelated.txt'), 'x'); // another event in the directory, same broken file
    writeFileSync(join(file, '..', 'unrelated.txt'), 'y');
    const fixed = nextLoaded(holder);
    writeFileSync(file, policyText('three'));
    await fixed;
    expect(errors).toHaveLength(1);
  });

  it('reload() re-reads the file (SIGHUP), without watching', () => {
    const { file, holder } = setup(policyText('one'), false);
    const events: string[] = [];
    holder.on('loaded', (p) => events.push(`loaded ${p.document.rules[0]?.name ?? ''}`));

    expect(holder.reload()).toMatchObject({ status: 'unchanged' });
    writeFileSync(file, policyText('two'));
    const result = holder.reload();
    expect(result.status).toBe('loaded');
    expect(holder.current.hash).toBe(sha256(policyText('two')));
    expect(events).toEqual(['loaded two']);

    // No 'error' listener: a bad version must still not throw.
    writeFileSync(file, BROKEN);
    const rejected = holder.reload();
    expect(rejected.status).toBe('rejected');
    expect(rejected.status === 'rejected' && rejected.error.code).toBe('CONFIG_INVALID');
    expect(holder.current.hash).toBe(sha256(policyText('two')));
    expect(events).toEqual(['loaded two']);
  });

  it('refuses to start with an invalid policy', () => {
    expect(() => setup(BROKEN)).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }));
  });

  it('without a path it holds the built-in policy', () => {
    const holder = new PolicyHolder();
    expect(holder.current).toBe(builtInPolicy());
    expect(holder.file).toBeUndefined();
    expect(holder.reload()).toEqual({ status: 'unchanged', policy: builtInPolicy() });
    holder.close();
  });
});
