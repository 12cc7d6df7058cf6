#!/usr/bin/env node
// Each workspace package declares exactly what it imports, so a user installs only what they need.
//
// For every workspace package (found through pnpm-workspace.yaml's globs, so a new packages/<name> is picked
// up without editing this file), the TypeScript parser reads every import of src/ and of the emitted
// declarations in dist/ (`pnpm build` first), and of test/ and the package's config files:
//
//   run-time needs   `import x from`, `import "x"`, `export ... from`, `import("x")`, `require("x")` and
//                    `import x = require("x")` in src/ (not `import type`, not imports whose every name is
//                    `type`): they run when a user imports the package, so they belong in `dependencies`
//                    or `peerDependencies`.
//   surface needs    every package the emitted dist/**/*.d.ts import or reference: a user's type checker
//                    resolves them, so they belong in `dependencies` or `peerDependencies` too (for a
//                    package without its own types that means its `@types/` package).
//   build needs      type-only imports of src/ that do not reach the declarations: the build resolves them,
//                    users never do, so `devDependencies` suffices (any section is accepted).
//   test needs       imports of test/ and of config files (vitest.config.ts, ...): any section of the
//                    package, or the root package.json's devDependencies (pnpm resolves upward).
//
// It fails on a run-time or surface need that is undeclared or only a devDependency, on any undeclared
// build or test need, and on a `dependencies` or `peerDependencies` entry that no run-time or surface need
// uses (a `@types/x` entry is used when `x` is a surface need, `@types/node` when the declarations use a
// Node built-in). Unused devDependencies are reported as notes only (tools run from scripts count as use).
// Node built-ins (`node:fs`, `fs`) need no declaration. Each failure names the package, the dependency,
// where it is imported and what to do.
//
// Usage: node scripts/deps-check.mjs [--root DIR] [--json]     (exit 0: clean, 1: findings, 2: cannot run)
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs"
import { builtinModules, createRequire } from "node:module"
import { dirname, join, relative, resolve } from "node:path"
import { fileURLToPath } from "node:url"

const require = createRequire(import.meta.url)

const builtins = new Set(builtinModules.flatMap((name) => [name, name.replace(/^node:/, "")]))

/** The package name an import specifier refers to, or undefined for relative, absolute and built-in ones. */
export const packageOfSpecifier = (specifier) => {
  if (specifier.startsWith(".") || specifier.startsWith("/") || specifier.startsWith("#")) return undefined
  if (specifier.startsWith("node:")) return undefined
  if (/^[a-z]+:/i.test(specifier)) return undefined // data:, file:, https: ...
  const parts = specifier.split("/")
  const name = specifier.startsWith("@") ? parts.slice(0, 2).join("/") : parts[0]
  if (builtins.has(name) || builtins.has(specifier)) return undefined
  return name
}

/** Whether a specifier names a Node built-in (`node:fs`, `fs`, `fs/promises`). */
const isBuiltin = (specifier) => specifier.startsWith("node:") || builtins.has(specifier)

/**
 * Every module specifier one source text imports, each with `typeOnly` (erased at run time). Dynamic imports
 * whose argument is not a string literal (loading a user's file) are not package needs and are skipped.
 */
export const importsOf = (ts, fileName, text) => {
  const source = ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, true)
  const found = []
  const add = (node, specifier, typeOnly) => {
    const { line } = source.getLineAndCharacterOfPosition(node.getStart(source))
    found.push({ specifier, typeOnly, line: line + 1 })
  }
  const visit = (node) => {
    if (ts.isImportDeclaration(node) && ts.isStringLiteral(node.moduleSpecifier)) {
      const clause = node.importClause
      let typeOnly = false
      if (clause !== undefined) {
        if (clause.isTypeOnly) typeOnly = true
        else if (clause.name === undefined && clause.namedBindings !== undefined) {
          const bindings = clause.namedBindings
          typeOnly =
            ts.isNamedImports(bindings) &&
            bindings.elements.length > 0 &&
            bindings.elements.every((element) => element.isTypeOnly)
        }
      }
      add(node, node.moduleSpecifier.text, typeOnly)
    } else if (
      ts.isExportDeclaration(node) &&
      node.moduleSpecifier !== undefined &&
      ts.isStringLiteral(node.moduleSpecifier)
    ) {
      const clause = node.exportClause
      const typeOnly =
        node.isTypeOnly ||
        (clause !== undefined &&
          ts.isNamedExports(clause) &&
          clause.elements.length > 0 &&
          clause.elements.every((element) => element.isTypeOnly))
      add(node, node.moduleSpecifier.text, typeOnly)
    } else if (
      ts.isImportEqualsDeclaration(node) &&
      ts.isExternalModuleReference(node.moduleReference) &&
      ts.isStringLiteral(node.moduleReference.expression)
    ) {
      add(node, node.moduleReference.expression.text, node.isTypeOnly)
    } else if (ts.isImportTypeNode(node)) {
      const argument = node.argument
      if (ts.isLiteralTypeNode(argument) && ts.isStringLiteral(argument.literal)) {
        add(node, argument.literal.text, true)
      }
    } else if (ts.isModuleDeclaration(node) && ts.isStringLiteral(node.name)) {
      // `declare module "x" { ... }` augments x's types: a type-level need.
      add(node, node.name.text, true)
    } else if (ts.isCallExpression(node)) {
      const [argument] = node.arguments
      const isImport = node.expression.kind === ts.SyntaxKind.ImportKeyword
      const isRequire = ts.isIdentifier(node.expression) && node.expression.text === "require"
      if ((isImport || isRequire) && argument !== undefined && ts.isStringLiteralLike(argument)) {
        add(node, argument.text, false)
      }
    }
    ts.forEachChild(node, visit)
  }
  visit(source)
  for (const reference of source.typeReferenceDirectives) {
    found.push({ specifier: reference.fileName, typeOnly: true, line: 0, typesReference: true })
  }
  return found
}

const sourceExtensions = /\.(ts|tsx|mts|cts|js|mjs|cjs)$/

const walk = (dir, accept) => {
  if (!existsSync(dir)) return []
  const out = []
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name === "node_modules") continue
    const path = join(dir, entry.name)
    if (entry.isDirectory()) out.push(...walk(path, accept))
    else if (accept(path)) out.push(path)
  }
  return out.sort()
}

/** The workspace package folders named by pnpm-workspace.yaml's `packages:` globs (`dir/*` or `dir`). */
export const workspacePackageDirs = (root) => {
  const yaml = readFileSync(join(root, "pnpm-workspace.yaml"), "utf8")
  const globs = []
  let inPackages = false
  for (const line of yaml.split("\n")) {
    if (/^packages:\s*$/.test(line)) inPackages = true
    else if (/^\S/.test(line)) inPackages = false
    else if (inPackages) {
      const match = /^\s+-\s+["']?([^"'#]+?)["']?\s*(#.*)?$/.exec(line)
      if (match) globs.push(match[1])
    }
  }
  const dirs = []
  for (const glob of globs) {
    if (glob.startsWith("!")) continue
    if (glob.endsWith("/*")) {
      const parent = join(root, glob.slice(0, -2))
      if (!existsSync(parent)) continue
      for (const name of readdirSync(parent).sort()) {
        if (existsSync(join(parent, name, "package.json"))) dirs.push(join(parent, name))
      }
    } else if (existsSync(join(root, glob, "package.json"))) dirs.push(join(root, glob))
  }
  return dirs
}

/** Matchers for the `compilerOptions.paths` keys of a package's tsconfig.json (none when it has no paths). */
const pathAliasesOf = (ts, dir) => {
  const file = join(dir, "tsconfig.json")
  if (!existsSync(file)) return []
  const { config } = ts.parseConfigFileTextToJson(file, readFileSync(file, "utf8"))
  return Object.keys(config?.compilerOptions?.paths ?? {}).map((key) => {
    const star = key.indexOf("*")
    if (star < 0) return (specifier) => specifier === key
    const prefix = key.slice(0, star)
    const suffix = key.slice(star + 1)
    return (specifier) => specifier.startsWith(prefix) && specifier.endsWith(suffix)
  })
}

/** `@types/x` for `x`, `@types/scope__x` for `@scope/x`. */
const typesPackageOf = (name) =>
  name.startsWith("@") ? `@types/${name.slice(1).replace("/", "__")}` : `@types/${name}`

/**
 * Checks one package folder; returns `{ name, failures: string[], notes: string[] }`. `rootDevDependencies`
 * are the root package.json's devDependencies (accepted for test needs only).
 */
export const checkPackage = (ts, dir, rootDevDependencies = {}) => {
  const manifest = JSON.parse(readFileSync(join(dir, "package.json"), "utf8"))
  const name = manifest.name
  const deps = manifest.dependencies ?? {}
  const peers = manifest.peerDependencies ?? {}
  const devs = manifest.devDependencies ?? {}
  const failures = []
  const notes = []
  const where = (file, line) => `${relative(dir, file)}${line > 0 ? `:${line}` : ""}`

  const runtime = new Map() // dependency -> first place
  const surface = new Map()
  const build = new Map()
  const test = new Map()
  let surfaceUsesNode = false
  const record = (map, dep, place) => {
    if (!map.has(dep)) map.set(dep, place)
  }

  for (const file of walk(
    join(dir, "src"),
    (path) => sourceExtensions.test(path) && !/\.d\.ts$/.test(path),
  )) {
    const isTest = /\.(test|spec)\.[cm]?[jt]sx?$/.test(file)
    for (const found of importsOf(ts, file, readFileSync(file, "utf8"))) {
      const dep = found.typesReference ? found.specifier : packageOfSpecifier(found.specifier)
      if (dep === undefined || dep === name) continue
      if (isTest) record(test, dep, where(file, found.line))
      else record(found.typeOnly ? build : runtime, dep, where(file, found.line))
    }
  }
  const distDir = join(dir, "dist")
  const declarations = walk(distDir, (path) => /\.d\.[cm]?ts$/.test(path))
  if (existsSync(join(dir, "src")) && declarations.length === 0 && manifest.types !== undefined) {
    failures.push(`${name}: dist/ holds no declaration files; run \`pnpm build\` before this check.`)
  }
  for (const file of declarations) {
    for (const found of importsOf(ts, file, readFileSync(file, "utf8"))) {
      if (found.typesReference) {
        if (found.specifier === "node") surfaceUsesNode = true
        else record(surface, found.specifier, where(file, found.line))
        continue
      }
      if (isBuiltin(found.specifier)) surfaceUsesNode = true
      const dep = packageOfSpecifier(found.specifier)
      if (dep === undefined || dep === name) continue
      record(surface, dep, where(file, found.line))
    }
  }
  // tsconfig.json `paths` aliases (e.g. @awa/testing-src/* for packages below @awa/testing) resolve to
  // workspace sources in tests; they are not package needs.
  const aliases = pathAliasesOf(ts, dir)
  const testFiles = [
    ...walk(join(dir, "test"), (path) => sourceExtensions.test(path)),
    ...readdirSync(dir)
      .filter((file) => /\.config\.[cm]?[jt]s$/.test(file))
      .map((file) => join(dir, file)),
  ]
  for (const file of testFiles) {
    for (const found of importsOf(ts, file, readFileSync(file, "utf8"))) {
      if (aliases.some((alias) => alias(found.specifier))) continue
      const dep = found.typesReference ? found.specifier : packageOfSpecifier(found.specifier)
      if (dep === undefined || dep === name) continue
      record(test, dep, where(file, found.line))
    }
  }

  // A dependency's types may come from the package itself or from its @types/ package.
  const declaredIn = (dep, ...sections) => sections.some((section) => section[dep] !== undefined)
  const declaredWithTypes = (dep, ...sections) =>
    declaredIn(dep, ...sections) || declaredIn(typesPackageOf(dep), ...sections)

  for (const [dep, place] of runtime) {
    if (declaredIn(dep, deps, peers)) continue
    if (declaredIn(dep, devs)) {
      failures.push(
        `${name}: ${dep} is imported at run time (${place}) but is only a devDependency, so a user's install ` +
          `lacks it. Move it to dependencies (or peerDependencies if the user must supply it).`,
      )
    } else {
      failures.push(
        `${name}: ${dep} is imported at run time (${place}) but not declared. ` +
          `Add it to dependencies (pnpm --filter ${name} add ${dep}) or to peerDependencies.`,
      )
    }
  }
  for (const [dep, place] of surface) {
    if (declaredWithTypes(dep, deps, peers)) continue
    const section = declaredWithTypes(dep, devs) ? "is only a devDependency" : "is not declared"
    failures.push(
      `${name}: the published declarations reference ${dep} (${place}), which ${section}; a user's type ` +
        `checker could not resolve it. Declare ${dep} (or ${typesPackageOf(dep)} if ${dep} ships no types) in ` +
        `dependencies or peerDependencies, or keep the type out of the public API.`,
    )
  }
  for (const [dep, place] of build) {
    if (runtime.has(dep) || surface.has(dep)) continue
    if (declaredWithTypes(dep, deps, peers, devs)) continue
    failures.push(
      `${name}: ${dep} is imported for types (${place}) but not declared. ` +
        `Add it to devDependencies (pnpm --filter ${name} add -D ${dep}); its types do not reach the published ` +
        `declarations, so users need not install it.`,
    )
  }
  for (const [dep, place] of test) {
    if (declaredWithTypes(dep, deps, peers, devs) || declaredWithTypes(dep, rootDevDependencies)) continue
    failures.push(
      `${name}: ${dep} is imported by tests or config (${place}) but declared neither by the package nor by ` +
        `the root devDependencies. Add it to devDependencies (pnpm --filter ${name} add -D ${dep}).`,
    )
  }

  const usedAtRunOrSurface = (dep) => {
    if (runtime.has(dep) || surface.has(dep)) return true
    if (dep === "@types/node") return surfaceUsesNode
    if (dep.startsWith("@types/")) {
      const bare = dep.slice("@types/".length)
      const target = bare.includes("__") ? `@${bare.replace("__", "/")}` : bare
      return surface.has(target)
    }
    return false
  }
  for (const [section, entries] of [
    ["dependencies", deps],
    ["peerDependencies", peers],
  ]) {
    for (const dep of Object.keys(entries)) {
      if (usedAtRunOrSurface(dep)) continue
      const alsoElsewhere = [build.has(dep) && "type-only imports in src", test.has(dep) && "tests"].filter(
        Boolean,
      )
      const typed = dep.startsWith("@types/")
        ? (() => {
            const bare = dep.slice("@types/".length)
            return bare.includes("__") ? `@${bare.replace("__", "/")}` : bare
          })()
        : undefined
      if (typed !== undefined && (runtime.has(typed) || build.has(typed))) alsoElsewhere.push("the build")
      else if (typed !== undefined && test.has(typed)) alsoElsewhere.push("the tests' type checks")
      const why =
        typed !== undefined
          ? `no published declaration references ${typed}`
          : "nothing in src imports it at run time and no published declaration references it"
      const action =
        alsoElsewhere.length > 0
          ? `move it to devDependencies (it is used by ${alsoElsewhere.join(" and ")})`
          : `remove it (pnpm --filter ${name} remove ${dep})`
      failures.push(`${name}: ${section} lists ${dep}, but ${why}: ${action}.`)
    }
  }

  const scripts = Object.values(manifest.scripts ?? {}).join(" ")
  for (const dep of Object.keys(devs)) {
    if (runtime.has(dep) || surface.has(dep) || build.has(dep) || test.has(dep)) continue
    if (dep.startsWith("@types/")) continue // ambient types, e.g. @types/node through tsconfig "types"
    const bin = dep.split("/").pop()
    if (scripts.includes(bin)) continue
    notes.push(`${name}: devDependencies lists ${dep}, which nothing in src, test or scripts uses.`)
  }
  return { name, private: manifest.private === true, failures, notes }
}

const main = () => {
  const args = process.argv.slice(2)
  const rootIndex = args.indexOf("--root")
  const root =
    rootIndex >= 0 ? resolve(args[rootIndex + 1]) : resolve(dirname(fileURLToPath(import.meta.url)), "..")
  let ts
  try {
    ts = require(require.resolve("typescript", { paths: [root] }))
  } catch {
    console.error("deps-check: typescript is not installed at the repository root; run `pnpm install` first.")
    process.exit(2)
  }
  const rootManifest = JSON.parse(readFileSync(join(root, "package.json"), "utf8"))
  const results = workspacePackageDirs(root)
    .filter((dir) => statSync(dir).isDirectory())
    .map((dir) => checkPackage(ts, dir, rootManifest.devDependencies ?? {}))
  if (args.includes("--json")) {
    console.log(JSON.stringify(results, null, 2))
  } else {
    for (const result of results) {
      const status = result.failures.length === 0 ? "ok" : `${result.failures.length} finding(s)`
      console.log(`deps-check: ${result.name}${result.private ? " (private)" : ""}: ${status}`)
      for (const note of result.notes) console.log(`  note: ${note}`)
      for (const failure of result.failures) console.error(`  FAIL: ${failure}`)
    }
  }
  const failed = results.some((result) => result.failures.length > 0)
  if (failed) {
    console.error("deps-check: undeclared or unused dependencies found (see FAIL lines above).")
    process.exit(1)
  }
  console.log(`deps-check: ${results.length} packages declare exactly what they import.`)
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main()
