/**
 * The import graph of the built JavaScript (dist/), read from the files themselves with the
 * TypeScript parser: which modules a module loads as soon as it is imported (static `import` /
 * `export … from`), and which it may load later (`import('literal')`).
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import ts from 'typescript';

export interface ModuleImports {
  /** Specifiers of `import … from 'x'`, `import 'x'` and `export … from 'x'` (type-only ones excluded). */
  static: string[];
  /** Specifiers of `import('x')` with a string literal. */
  dynamic: string[];
  /** `import(expr)` calls whose specifier is not a string literal (the walk cannot follow them). */
  computed: number;
}

/** The imports written in one JavaScript file. */
export function importsOf(file: string): ModuleImports {
  const sf = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true, ts.ScriptKind.JS);
  const out: ModuleImports = { static: [], dynamic: [], computed: 0 };
  const visit = (n: ts.Node): void => {
    if (ts.isImportDeclaration(n) && ts.isStringLiteral(n.moduleSpecifier) && !n.importClause?.isTypeOnly) out.static.push(n.moduleSpecifier.text);
    else if (ts.isExportDeclaration(n) && n.moduleSpecifier && ts.isStringLiteral(n.moduleSpecifier) && !n.isTypeOnly) out.static.push(n.moduleSpecifier.text);
    else if (ts.isCallExpression(n) && n.expression.kind === ts.SyntaxKind.ImportKeyword) {
      const a = n.arguments[0];
      if (a && (ts.isStringLiteral(a) || ts.isNoSubstitutionTemplateLiteral(a))) out.dynamic.push(a.text);
      else out.computed++;
    }
    ts.forEachChild(n, visit);
  };
  visit(sf);
  return out;
}

export interface Graph {
  /** Absolute paths of the project's own modules reached. */
  files: Set<string>;
  /** Bare specifiers (packages, `node:` builtins) reached, each with one module that imports it. */
  packages: Map<string, string>;
  /** For each file reached, the file that first imported it (to print a path to an offender). */
  parent: Map<string, string>;
}

/**
 * Every module reachable from `entries`: through static imports only (`dynamic: false`: what
 * loading the entries loads) or through literal dynamic imports too (everything they may ever load).
 */
export function walk(entries: string[], opts: { dynamic: boolean }): Graph {
  const g: Graph = { files: new Set(), packages: new Map(), parent: new Map() };
  const todo = entries.map((e) => resolve(e));
  for (const e of todo) g.files.add(e);
  while (todo.length) {
    const file = todo.pop()!;
    const imp = importsOf(file);
    for (const spec of opts.dynamic ? [...imp.static, ...imp.dynamic] : imp.static) {
      if (spec.startsWith('.') || spec.startsWith('/')) {
        const target = resolve(dirname(file), spec);
        if (!g.files.has(target)) {
          g.files.add(target);
          g.parent.set(target, file);
          todo.push(target);
        }
      } else if (!g.packages.has(spec)) g.packages.set(spec, file);
    }
  }
  return g;
}

/** `a.js → b.js → c.js`: how the walk reached `file`. */
export function chain(g: Graph, file: string, root: string): string {
  const path = [file];
  for (let f = g.parent.get(file); f; f = g.parent.get(f)) path.unshift(f);
  return path.map((p) => (p.startsWith(root) ? p.slice(root.length + 1) : p)).join(' → ');
}
