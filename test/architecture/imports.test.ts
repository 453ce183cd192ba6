// The architecture as a test: every import between folders of src/ follows test/architecture/layers.ts
// (explained in docs/architecture.md), the table has no cycles, and every folder is in it.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cycles, importEdges, importSpecifiers, violations, type Edge } from './imports.js';
import { LAYERS } from './layers.js';

const ROOT = resolve(import.meta.dirname, '../..');

describe('folder dependencies', () => {
  it('every import between src/ folders is an allowed arrow', () => {
    expect(violations(importEdges(ROOT), LAYERS)).toEqual([]);
  });

  it('the allowed arrows have no cycle: no folder imports one that imports it back', () => {
    expect(cycles(LAYERS)).toEqual([]);
  });

  it('every folder of src/ is in the table, and the table names no folder that does not exist', () => {
    const folders = readdirSync(join(ROOT, 'src')).filter((f) => statSync(join(ROOT, 'src', f)).isDirectory()).sort();
    expect(Object.keys(LAYERS).sort()).toEqual(folders);
  });

  it('every folder of src/ opens with a README of its role', () => {
    const folders = readdirSync(join(ROOT, 'src')).filter((f) => statSync(join(ROOT, 'src', f)).isDirectory());
    expect(folders.filter((f) => !existsSync(join(ROOT, 'src', f, 'README.md')))).toEqual([]);
  });

  it('docs/architecture.md draws the same arrows as the table', () => {
    const doc = readFileSync(join(ROOT, 'docs/architecture.md'), 'utf8');
    const names = new Set(Object.keys(LAYERS));
    const documented: Record<string, string[]> = {};
    for (const row of doc.split('\n').filter((l) => l.startsWith('| `'))) {
      const [, folders = '', , mayImport = ''] = row.split('|').map((c) => c.trim());
      // A row may name several folders (the leaf helpers); its column is then their union.
      const listed = mayImport.replace(/\([^)]*\)/g, '').split(/[^a-z]+/).filter((w) => names.has(w));
      for (const [, folder] of folders.matchAll(/`([a-z]+)`/g)) documented[folder!] = listed;
    }
    expect(Object.keys(documented).sort(), 'every folder has a row').toEqual([...names].sort());
    for (const [folder, listed] of Object.entries(documented)) {
      const row = Object.keys(documented).filter((f) => documented[f] === listed);
      const allowed = new Set(row.flatMap((f) => [...LAYERS[f as keyof typeof LAYERS]]));
      expect([...new Set(listed)].sort(), `docs/architecture.md row of ${folder}`).toEqual([...allowed].sort());
    }
  });

  it('the table keeps the rules docs/architecture.md states', () => {
    const may = (from: keyof typeof LAYERS, to: string) => (LAYERS[from] as readonly string[]).includes(to);
    expect(may('protocol', 'transport')).toBe(false);
    for (const higher of ['policy', 'store', 'approvals', 'session']) expect(may('transport', higher)).toBe(false);
    for (const higher of ['transport', 'session', 'endpoint', 'policy']) expect(may('recording', higher)).toBe(false);
    for (const higher of ['policy', 'approvals', 'endpoint', 'session']) expect(may('store', higher)).toBe(false);
    const simUsers = Object.entries(LAYERS).filter(([, to]) => (to as readonly string[]).includes('sim')).map(([from]) => from);
    expect(simUsers).toEqual(['cli']);
    expect(may('app', 'sim')).toBe(false);
  });

  it('the checker fails on a forbidden import (src/app importing src/sim, src/store importing src/policy)', () => {
    const edges: Edge[] = [
      { file: 'src/app/bastion.ts', from: 'app', to: 'sim' },
      { file: 'src/store/audit.ts', from: 'store', to: 'policy' },
      { file: 'src/api/x.ts', from: 'api', to: 'store' },
    ];
    expect(violations(edges, LAYERS)).toEqual(['src/app/bastion.ts: src/app may not import src/sim', 'src/store/audit.ts: src/store may not import src/policy']);
    expect(cycles({ a: ['b'], b: ['c'], c: ['a'] })).toContain('a -> b -> c -> a');
  });

  it('reads every form of import: named, type-only, multi-line, re-export, side effect, dynamic', () => {
    const text = [
      "import { a } from '../a/x.js';",
      "import type { B } from '../b/x.js';",
      'import {',
      '  c,',
      "} from '../c/x.js';",
      "export * from '../d/x.js';",
      "export { e } from '../e/x.js';",
      "import '../f/x.js';",
      "const g = await import('../g/x.js');",
      "import { h } from 'node:fs';",
    ].join('\n');
    expect(importSpecifiers(text)).toEqual(['../a/x.js', '../b/x.js', '../c/x.js', '../d/x.js', '../e/x.js', '../f/x.js', '../g/x.js']);
  });

  it('reads real imports, including re-exports and dynamic imports', () => {
    const edges = importEdges(ROOT);
    expect(edges.some((e) => e.from === 'app' && e.to === 'endpoint')).toBe(true);
    expect(edges.some((e) => e.from === 'cli' && e.to === 'sim')).toBe(true);
    expect(edges.some((e) => e.from === 'errors' && e.to === 'protocol')).toBe(true);
  });
});
