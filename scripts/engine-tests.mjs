#!/usr/bin/env node
// Runs packages/runtime's test suite (its lifecycle, crash and leader-failover integration tests included)
// under every storage engine @awa/testing implements other than the default: `npm test` already ran it
// under canonical. Each pass sets AWA_TEST_ENGINE and AWA_ENGINE to the engine, so the engine the tests
// build directly and the one producers, workers and admin pick up from the environment are the same; tests
// that assert one engine's mechanics skip themselves with @awa/testing's one-line guard (onlyOnEngine).
// Test files that never read the engine under test (one engine's own tests, which build that engine
// themselves) run identically in every pass: --exclude GLOB (repeatable) leaves them to `npm test`.
// Prints each pass with its time and exits non-zero when any failed.
// Usage: node scripts/engine-tests.mjs [--engines queue_storage,...] [--package runtime] [--exclude GLOB ...]
// Needs the packages built (`pnpm build`): the engine list comes from @awa/testing's dist.
import { spawnSync } from "node:child_process"
import { existsSync } from "node:fs"
import { join } from "node:path"
import { performance } from "node:perf_hooks"
import { pathToFileURL } from "node:url"

const root = new URL("..", import.meta.url).pathname
const engineModule = join(root, "packages", "testing", "dist", "TestEngine.js")
if (!existsSync(engineModule)) {
  console.error("engine-tests: packages/testing/dist is missing; run `pnpm build` first.")
  process.exit(2)
}
const { testEngineNames, parseTestEngine, defaultTestEngine } = await import(pathToFileURL(engineModule).href)

const optionValue = (name) => {
  const index = process.argv.indexOf(`--${name}`)
  if (index === -1) return undefined
  const value = process.argv[index + 1]
  if (value === undefined || value.startsWith("--")) {
    console.error(`engine-tests: --${name} needs a value`)
    process.exit(2)
  }
  return value
}
const packageName = optionValue("package") ?? "runtime"
const packageDir = join(root, "packages", packageName)
if (!existsSync(join(packageDir, "vitest.config.ts"))) {
  console.error(`engine-tests: packages/${packageName} has no vitest.config.ts`)
  process.exit(2)
}
const excludes = process.argv.flatMap((arg, i) => {
  if (arg !== "--exclude") return []
  const glob = process.argv[i + 1]
  if (glob === undefined || glob.startsWith("--")) {
    console.error("engine-tests: --exclude needs a glob, e.g. --exclude 'test/QueueStorage*.test.ts'")
    process.exit(2)
  }
  return ["--exclude", glob]
})

let engines
try {
  engines =
    optionValue("engines")
      ?.split(",")
      .filter(Boolean)
      .map((e) => parseTestEngine(e, "--engines")) ?? testEngineNames.filter((e) => e !== defaultTestEngine)
} catch (error) {
  console.error(`engine-tests: ${error.message}`)
  process.exit(2)
}
if (engines.length === 0) {
  console.log(`engine-tests: no engine besides ${defaultTestEngine} is implemented; nothing to run.`)
  process.exit(0)
}

// The package's own vitest if it declares one, else the workspace root's (runtime takes it from the root).
const vitest = [packageDir, root]
  .map((dir) => join(dir, "node_modules", "vitest", "vitest.mjs"))
  .find((file) => existsSync(file))
if (vitest === undefined) {
  console.error("engine-tests: vitest is not installed; run `pnpm install` first.")
  process.exit(2)
}
const passes = []
for (const engine of engines) {
  console.log(`\nengine-tests: packages/${packageName} with AWA_TEST_ENGINE=${engine} AWA_ENGINE=${engine}`)
  const start = performance.now()
  const result = spawnSync(process.execPath, [vitest, "run", ...excludes], {
    cwd: packageDir,
    stdio: "inherit",
    env: { ...process.env, AWA_TEST_ENGINE: engine, AWA_ENGINE: engine },
  })
  passes.push({ engine, ok: result.status === 0, seconds: (performance.now() - start) / 1000 })
}
console.log("\nengine-tests:")
for (const pass of passes) {
  console.log(
    `  ${pass.ok ? "pass" : "FAIL"}  packages/${packageName} under ${pass.engine}  (${pass.seconds.toFixed(1)} s)`,
  )
}
process.exit(passes.every((pass) => pass.ok) ? 0 : 1)
