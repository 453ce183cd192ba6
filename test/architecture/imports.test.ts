// The architecture as a test: every import between folders of src/ follows test/architecture/layers.ts
// (explained in docs/architecture.md), the table has no cycles, and every folder is in it.
import { readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cycles, importEdges, violations, type Edge } from './imports.js';
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

  it('reads real imports, including re-exports and dynamic imports', () => {
    const edges = importEdges(ROOT);
    expect(edges.some((e) => e.from === 'app' && e.to === 'endpoint')).toBe(true);
    expect(edges.some((e) => e.from === 'cli' && e.to === 'sim')).toBe(true);
    expect(edges.some((e) => e.from === 'errors' && e.to === 'protocol')).toBe(true);
  });
});
