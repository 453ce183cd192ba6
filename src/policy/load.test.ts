import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isBastionError } from '../errors/index.js';
import { DEFAULT_POLICY_YAML } from './default-policy.js';
import { loadPolicy } from './load.js';

const dir = mkdtempSync(join(tmpdir(), 'kb-policy-load-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function loadError(path: string): unknown {
  try {
    loadPolicy({ path });
  } catch (err) {
    return err;
  }
  throw new Error('expected loadPolicy to fail');
}

describe('loadPolicy', () => {
  it('hashes the exact file bytes (CRLF and BOM included) and keeps the text', () => {
    const bytes = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(DEFAULT_POLICY_YAML.replace(/\n/g, '\r\n'))]);
    const path = join(dir, 'crlf.yaml');
    writeFileSync(path, bytes);
    const p = loadPolicy({ path });
    expect(p.hash).toBe(createHash('sha256').update(bytes).digest('hex'));
    expect(p.origin).toBe(path);
    expect(p.text).toBe(bytes.toString('utf8'));
    expect(p.document.rules.map((r) => r.name)).toContain('deny-node-proxy');
  });

  it('freezes the document', () => {
    const path = join(dir, 'frozen.yaml');
    writeFileSync(path, DEFAULT_POLICY_YAML);
    const p = loadPolicy({ path });
    expect(Object.isFrozen(p)).toBe(true);
    expect(Object.isFrozen(p.document.rules)).toBe(true);
    expect(Object.isFrozen(p.document.rules[0]?.match)).toBe(true);
    expect(() => {
      (p.document.rules as unknown as unknown[]).push({});
    }).toThrow(TypeError);
  });

  it('a missing file is CONFIG_INVALID', () => {
    const err = loadError(join(dir, 'nope.yaml'));
    expect(isBastionError(err, 'CONFIG_INVALID')).toBe(true);
    expect((err as Error).message).toMatch(/^cannot read policy file .*nope\.yaml: ENOENT/);
  });

  it('invalid UTF-8 is CONFIG_INVALID', () => {
    const path = join(dir, 'latin1.yaml');
    writeFileSync(path, Buffer.from([0x61, 0x3a, 0x20, 0xe9, 0x0a]));
    const err = loadError(path);
    expect(isBastionError(err, 'CONFIG_INVALID')).toBe(true);
    expect((err as Error).message).toBe(`policy ${path} is not valid UTF-8`);
  });

  it('errors name the file as given', () => {
    const path = join(dir, 'bad.yaml');
    writeFileSync(path, 'apiVersion: kube-bastion/v1\nkind: Policy\nrules:\n  - name: x\n    match: {}\n    action: maybe\n');
    const err = loadError(path);
    expect((err as Error).message.split('\n')[1]).toBe(`${path}:6:13: rules[0].action: unknown action "maybe" (expected one of allow, approval, deny)`);
  });
});
