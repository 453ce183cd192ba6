// Reads the relative imports of src/ production files and checks them against a layer table.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';

export interface Edge {
  /** File that imports, relative to the repository root. */
  file: string;
  from: string;
  to: string;
}

// `import ... from '..'`, `export ... from '..'`, a side-effect `import '..'`, and `import('..')`.
const IMPORT =
  /(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s+['"](\.{1,2}\/[^'"]+)['"]|(?:^|\n)\s*import\s+['"](\.{1,2}\/[^'"]+)['"]|import\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)/g;

/** The relative specifiers `text` imports or re-exports. */
export function importSpecifiers(text: string): string[] {
  return [...text.matchAll(IMPORT)].map((m) => (m[1] ?? m[2] ?? m[3])!);
}

function walk(dir: string, out: string[] = []): string[] {
  for (const entry of readdirSync(dir)) {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) walk(path, out);
    else if (entry.endsWith('.ts') && !entry.endsWith('.test.ts') && entry !== 'test-support.ts') out.push(path);
  }
  return out;
}

/** The folder of src/ a path belongs to (first segment), or undefined outside src/. */
export function folderOf(srcDir: string, path: string): string | undefined {
  const rel = relative(srcDir, path);
  if (rel.startsWith('..')) return undefined;
  return rel.split(sep)[0];
}

/** Every cross-folder import edge in the production files under `srcDir`. */
export function importEdges(root: string, srcDir = join(root, 'src')): Edge[] {
  const edges: Edge[] = [];
  for (const file of walk(srcDir)) {
    const text = readFileSync(file, 'utf8');
    const from = folderOf(srcDir, file)!;
    for (const spec of importSpecifiers(text)) {
      const to = folderOf(srcDir, resolve(dirname(file), spec));
      if (to === undefined) {
        edges.push({ file: relative(root, file), from, to: `outside src: ${spec}` });
      } else if (to !== from) {
        edges.push({ file: relative(root, file), from, to });
      }
    }
  }
  return edges;
}

/** Edges the table does not allow, each as a readable line. */
export function violations(edges: readonly Edge[], allowed: Readonly<Record<string, readonly string[]>>): string[] {
  const out: string[] = [];
  for (const e of edges) {
    const list = allowed[e.from];
    if (list === undefined) out.push(`${e.file}: folder src/${e.from} is not in the layer table`);
    else if (!list.includes(e.to)) out.push(`${e.file}: src/${e.from} may not import src/${e.to}`);
  }
  return [...new Set(out)];
}

/** Cycles in the table itself (a folder reachable from itself), as `a -> b -> a`. */
export function cycles(allowed: Readonly<Record<string, readonly string[]>>): string[] {
  const found: string[] = [];
  const visit = (start: string, at: string, path: string[]): void => {
    for (const next of allowed[at] ?? []) {
      if (next === start) found.push([...path, next].join(' -> '));
      else if (!path.includes(next)) visit(start, next, [...path, next]);
    }
  };
  for (const folder of Object.keys(allowed)) visit(folder, folder, [folder]);
  return found;
}
