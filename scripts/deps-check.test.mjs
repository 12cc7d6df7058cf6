// Unit tests of deps-check on small fixture workspaces written to a temp folder (node --test).
import assert from "node:assert/strict"
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { createRequire } from "node:module"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { after, test } from "node:test"
import { checkPackage, importsOf, packageOfSpecifier, workspacePackageDirs } from "./deps-check.mjs"

const ts = createRequire(import.meta.url)("typescript")
const work = mkdtempSync(join(tmpdir(), "awa-deps-check-"))
after(() => rmSync(work, { recursive: true, force: true }))

const writePackage = (name, manifest, files) => {
  const dir = join(work, "packages", name)
  mkdirSync(dir, { recursive: true })
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true })
    writeFileSync(join(dir, path), text)
  }
  writeFileSync(join(dir, "package.json"), JSON.stringify({ name: `@awa/${name}`, ...manifest }))
  return dir
}

test("specifiers map to package names; relative and built-in ones to none", () => {
  assert.equal(packageOfSpecifier("effect/Schema"), "effect")
  assert.equal(packageOfSpecifier("@awa/model/Limits"), "@awa/model")
  assert.equal(packageOfSpecifier("./Foo.js"), undefined)
  assert.equal(packageOfSpecifier("node:fs"), undefined)
  assert.equal(packageOfSpecifier("fs/promises"), undefined)
})

test("type-only imports are told apart from run-time ones", () => {
  const found = importsOf(
    ts,
    "x.ts",
    [
      'import type { A } from "a"',
      'import { type B, type C } from "b"',
      'import { type D, e } from "d"',
      'import "side-effect"',
      'export { f } from "f"',
      'export type { G } from "g"',
      'const h = await import("h")',
      "const user = await import(path)",
      'type I = typeof import("i")',
    ].join("\n"),
  )
  const byName = Object.fromEntries(found.map((entry) => [entry.specifier, entry.typeOnly]))
  assert.deepEqual(byName, {
    a: true,
    b: true,
    d: false,
    "side-effect": false,
    f: false,
    g: true,
    h: false,
    i: true,
  })
})

test("an unused runtime dependency and an undeclared import both fail, naming what to do", () => {
  const dir = writePackage(
    "runtime",
    { dependencies: { "@awa/model": "workspace:^", "@awa/migrator": "workspace:^" } },
    {
      "src/index.ts":
        'import { x } from "@awa/model"\nimport { Pool } from "pg"\nexport const y = [x, Pool]\n',
      "test/index.test.ts": 'import { migrate } from "@awa/migrator"\n',
    },
  )
  const { failures } = checkPackage(ts, dir)
  const text = failures.join("\n")
  assert.match(text, /pg is imported at run time \(src\/index\.ts:2\) but not declared/)
  assert.match(
    text,
    /dependencies lists @awa\/migrator, but nothing in src imports it .*move it to devDependencies/,
  )
})

test("a run-time import declared only as a devDependency fails", () => {
  const dir = writePackage(
    "dev-only",
    { devDependencies: { effect: "4.1.0" } },
    { "src/index.ts": 'import { Effect } from "effect"\nexport const e = Effect\n' },
  )
  assert.match(
    checkPackage(ts, dir).failures.join("\n"),
    /effect is imported at run time .* only a devDependency/,
  )
})

test("types that reach the published declarations must be dependencies; internal type imports need not", () => {
  const dir = writePackage(
    "types",
    {
      types: "./dist/index.d.ts",
      dependencies: { "@types/pg": "^8" },
      devDependencies: { "@types/ws": "^8" },
    },
    {
      "src/index.ts":
        'import type { Pool } from "pg"\nimport type { WebSocket } from "ws"\nexport type P = Pool\n',
      "dist/index.d.ts": 'import type { Pool } from "pg";\nexport type P = Pool;\n',
    },
  )
  assert.deepEqual(checkPackage(ts, dir).failures, [])
  const leaked = writePackage(
    "types-leaked",
    { types: "./dist/index.d.ts", devDependencies: { "@types/pg": "^8" } },
    {
      "src/index.ts": 'import type { Pool } from "pg"\nexport type P = Pool\n',
      "dist/index.d.ts": 'import type { Pool } from "pg";\nexport type P = Pool;\n',
    },
  )
  assert.match(
    checkPackage(ts, leaked).failures.join("\n"),
    /published declarations reference pg .* is only a devDependency/,
  )
  const unused = writePackage(
    "types-unused",
    { types: "./dist/index.d.ts", dependencies: { "@types/pg": "^8", pg: "^8" } },
    {
      "src/index.ts": 'import pg from "pg"\nexport const p: unknown = pg\n',
      "dist/index.d.ts": "export declare const p: unknown;\n",
    },
  )
  assert.match(
    checkPackage(ts, unused).failures.join("\n"),
    /dependencies lists @types\/pg, but no published declaration references pg: move it to devDependencies/,
  )
})

test("tests may use the root devDependencies and tsconfig path aliases", () => {
  const dir = writePackage(
    "aliased",
    {},
    {
      "tsconfig.json": '{ "compilerOptions": { "paths": { "@awa/testing-src/*": ["../testing/src/*"] } } }',
      "test/a.test.ts": 'import { it } from "vitest"\nimport { x } from "@awa/testing-src/Foo.js"\n',
    },
  )
  assert.deepEqual(checkPackage(ts, dir, { vitest: "5.1.1" }).failures, [])
  assert.match(checkPackage(ts, dir, {}).failures.join("\n"), /vitest is imported by tests/)
})

test("packages are found through pnpm-workspace.yaml's globs, a new folder included", () => {
  writeFileSync(
    join(work, "pnpm-workspace.yaml"),
    "packages:\n  - packages/*\n  - bench\nallowBuilds:\n  x: true\n",
  )
  mkdirSync(join(work, "bench"), { recursive: true })
  writeFileSync(join(work, "bench", "package.json"), '{"name":"@awa/bench","private":true}')
  writePackage("model", {}, {})
  const dirs = workspacePackageDirs(work).map((dir) => dir.slice(work.length + 1))
  assert.ok(dirs.includes("bench"), dirs.join(", "))
  assert.ok(dirs.includes(join("packages", "model")), dirs.join(", "))
  writePackage("pgmq", {}, {})
  assert.ok(workspacePackageDirs(work).some((dir) => dir.endsWith(join("packages", "pgmq"))))
})
