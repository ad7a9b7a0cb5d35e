// The static import graph of a source tree, for the cycle check of test/import-cycles.test.ts.
// A small parser on purpose (no dependency): moco-ts writes imports one way only, ES `import`/
// `export ... from` with a relative ".js" specifier, so a regular expression over the statements
// is exact here. Dynamic `import()` is not an edge: it runs when called, never at load time.
import { readFileSync, readdirSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";

export interface ImportEdge {
  /** Importing file, relative to the root given to importGraph. */
  from: string;
  /** Imported file, relative to the same root (".js" specifiers mapped back to ".ts"). */
  to: string;
  /** true for `import type`/`export type` and imports whose every name is `type X`: erased by TypeScript. */
  typeOnly: boolean;
}

const STATEMENT = /^\s*(import|export)\s+(type\s+)?([^;]*?)\s+from\s+["'](\.{1,2}\/[^"']+)["']/gms;

function typeOnlyNames(clause: string): boolean {
  const braces = /^\{([\s\S]*)\}$/.exec(clause.trim());
  if (braces === null) return false; // a default or namespace import is a value
  const names = (braces[1] ?? "")
    .split(",")
    .map((n) => n.trim())
    .filter((n) => n !== "");
  return names.length > 0 && names.every((n) => n.startsWith("type "));
}

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return tsFiles(path);
    return entry.name.endsWith(".ts") ? [path] : [];
  });
}

/** Every relative import of every .ts file under `root/dir`. */
export function importGraph(root: string, dir: string): ImportEdge[] {
  const edges: ImportEdge[] = [];
  for (const file of tsFiles(join(root, dir))) {
    const text = readFileSync(file, "utf8");
    for (const m of text.matchAll(STATEMENT)) {
      const target = resolve(dirname(file), (m[4] as string).replace(/\.js$/, ".ts"));
      edges.push({
        from: relative(root, file),
        to: relative(root, target),
        typeOnly: m[2] !== undefined || typeOnlyNames(m[3] as string),
      });
    }
  }
  return edges;
}

/** The cycles of the graph, one per strongly connected component with more than one file (or a self-import). */
export function importCycles(edges: readonly ImportEdge[]): string[][] {
  const next = new Map<string, string[]>();
  for (const e of edges) next.set(e.from, [...(next.get(e.from) ?? []), e.to]);
  // Tarjan's algorithm.
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const components: string[][] = [];
  let counter = 0;
  const visit = (v: string): void => {
    index.set(v, counter);
    low.set(v, counter);
    counter++;
    stack.push(v);
    onStack.add(v);
    for (const w of next.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v) as number, low.get(w) as number));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v) as number, index.get(w) as number));
      }
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop() as string;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1 || (next.get(v) ?? []).includes(v)) components.push(component.sort());
    }
  };
  for (const v of [...next.keys()].sort()) if (!index.has(v)) visit(v);
  return components;
}
