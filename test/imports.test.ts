/**
 * The import graph of src/: no cycles, and imports that point down the layers (README, development).
 * Every import counts: static, dynamic, type-only, side-effect and re-exports.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from './helpers/corpus.js';

type Graph = Map<string, string[]>;

const SPECIFIERS = /(?:^|[\s;])(?:import|export)\s+(?:type\s+)?(?:[^'"]*?\sfrom\s+)?['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;

/** Each module of src/ (path relative to src/) and the modules of ours it imports. */
function importGraph(): Graph {
  const src = join(REPO_ROOT, 'src');
  const graph: Graph = new Map();
  const walk = (dir: string) => {
    for (const d of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, d.name);
      if (d.isDirectory()) walk(p);
      else if (d.name.endsWith('.ts')) {
        const deps = [...readFileSync(p, 'utf8').matchAll(SPECIFIERS)]
          .map((m) => m[1] ?? m[2])
          .filter((s) => s.startsWith('.'))
          .map((s) => relative(src, resolve(dirname(p), s)).replace(/\.js$/, '.ts'));
        graph.set(relative(src, p), deps);
      }
    }
  };
  walk(src);
  return graph;
}

/** The strongly connected components with more than one module, or a module importing itself (Tarjan). */
export function cycles(graph: Graph): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (v: string) => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const c: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        c.push(w);
      } while (w !== v);
      if (c.length > 1 || graph.get(v)!.includes(v)) found.push(c.sort());
    }
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return found;
}

/** The layer of a module: its folder under src/, or the file itself for the modules at the top. */
const layerOf = (module: string) => (module.includes('/') ? module.slice(0, module.indexOf('/')) : module);

/** What each layer may import, besides itself. The composition roots (cli.ts, server.ts, ...) may import anything. */
const MAY_IMPORT: Record<string, readonly string[]> = {
  'errors.ts': [],
  'keyed.ts': [],
  'logger.ts': [],
  'csv.ts': [],
  'secret.ts': ['errors.ts'],
  'config.ts': ['errors.ts', 'stages'],
  dicom: ['errors.ts'],
  profiles: ['dicom', 'errors.ts'],
  stages: ['profiles', 'dicom', 'errors.ts', 'keyed.ts'],
  dimse: ['dicom', 'errors.ts'],
  idmap: ['stages', 'dicom', 'errors.ts', 'csv.ts'],
  report: ['stages', 'dicom', 'errors.ts', 'keyed.ts', 'csv.ts'],
  pipeline: ['idmap', 'report', 'stages', 'profiles', 'dicom', 'errors.ts', 'keyed.ts', 'config.ts', 'secret.ts'],
  ingest: ['pipeline', 'dimse', 'dicom', 'errors.ts'],
  export: ['pipeline', 'dimse', 'dicom', 'errors.ts'],
  http: ['pipeline', 'ingest', 'dicom', 'errors.ts'],
  cli: ['pipeline', 'idmap', 'report', 'stages', 'profiles', 'dicom', 'errors.ts', 'secret.ts'],
};
const ROOTS = new Set(['cli.ts', 'server.ts', 'server-command.ts', 'pipeline-thread.ts']);

describe('the import graph of src/', () => {
  const graph = importGraph();

  it('should see every module and its imports, including dynamic and type-only ones', () => {
    expect(graph.size).toBeGreaterThan(80);
    expect(graph.get('pipeline/stage-list.ts')).toContain('stages/pixels/pixel-stage.ts'); // a dynamic and a type-only import
    expect(graph.get('cli.ts')).toContain('server-command.ts'); // dynamic only
  });

  it('should find a cycle when there is one (the check itself)', () => {
    const g: Graph = new Map([
      ['a.ts', ['b.ts']],
      ['b.ts', ['c.ts']],
      ['c.ts', ['a.ts']],
      ['d.ts', ['a.ts', 'd.ts']],
      ['e.ts', []],
    ]);
    expect(cycles(g)).toEqual([['a.ts', 'b.ts', 'c.ts'], ['d.ts']]);
  });

  it('should have no import cycle', () => {
    expect(cycles(graph)).toEqual([]);
  });

  it('should import only down the layers', () => {
    const wrong: string[] = [];
    for (const [module, deps] of graph) {
      const from = layerOf(module);
      if (ROOTS.has(from)) continue;
      const allowed = MAY_IMPORT[from];
      if (!allowed) {
        wrong.push(`${module}: the layer ${from} is not in the table`);
        continue;
      }
      for (const d of deps) {
        const to = layerOf(d);
        if (to !== from && !allowed.includes(to)) wrong.push(`${module} -> ${d}`);
      }
    }
    expect(wrong).toEqual([]);
  });
});
