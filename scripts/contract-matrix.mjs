#!/usr/bin/env node
// Runs the engine contract suite (packages/testing/test/contract.integration.test.ts, plus the model-based
// test EngineModel.integration.test.ts) for every engine @awa/testing implements, crossed with both
// database modes: AWA_TEST_ENGINE x AWA_TEST_DB_MODE, one vitest run per cell, then prints the matrix and
// exits non-zero when any cell failed.
// Usage: node scripts/contract-matrix.mjs [--engines canonical,...] [--modes single,split]
// Needs the packages built (`pnpm build`): the engine list comes from @awa/testing's dist.
import { spawnSync } from "node:child_process"
import { existsSync } from "node:fs"
import { join } from "node:path"
import { pathToFileURL } from "node:url"

const root = new URL("..", import.meta.url).pathname
const testingDir = join(root, "packages", "testing")
const engineModule = join(testingDir, "dist", "TestEngine.js")
if (!existsSync(engineModule)) {
  console.error("contract-matrix: packages/testing/dist is missing; run `pnpm build` first.")
  process.exit(2)
}
const { testEngineNames, parseTestEngine } = await import(pathToFileURL(engineModule).href)
const { testDbModes, parseTestDbMode } = await import(
  pathToFileURL(join(testingDir, "dist", "TestDatabases.js")).href
)

const option = (name) => {
  const index = process.argv.indexOf(`--${name}`)
  if (index === -1) return undefined
  const value = process.argv[index + 1]
  if (value === undefined || value.startsWith("--")) {
    console.error(`contract-matrix: --${name} needs a comma-separated list`)
    process.exit(2)
  }
  return value.split(",").filter(Boolean)
}
let engines
let modes
try {
  // Unknown names fail here with the valid ones listed, rather than running nothing.
  engines = option("engines")?.map((e) => parseTestEngine(e, "--engines")) ?? testEngineNames
  modes = option("modes")?.map((m) => parseTestDbMode(m, "--modes")) ?? testDbModes
} catch (error) {
  console.error(`contract-matrix: ${error.message}`)
  process.exit(2)
}

const vitest = join(testingDir, "node_modules", "vitest", "vitest.mjs")
const cells = []
for (const engine of engines) {
  for (const mode of modes) {
    console.log(`\ncontract-matrix: AWA_TEST_ENGINE=${engine} AWA_TEST_DB_MODE=${mode}`)
    // The contract suite, and the model-based test that checks random interleavings against a model of it.
    const files = ["test/contract.integration.test.ts", "test/EngineModel.integration.test.ts"]
    const result = spawnSync(process.execPath, [vitest, "run", ...files], {
      cwd: testingDir,
      stdio: "inherit",
      env: { ...process.env, AWA_TEST_ENGINE: engine, AWA_TEST_DB_MODE: mode },
    })
    cells.push({ engine, mode, ok: result.status === 0 })
  }
}
console.log("\ncontract-matrix:")
for (const cell of cells) console.log(`  ${cell.ok ? "pass" : "FAIL"}  ${cell.engine} x ${cell.mode}`)
process.exit(cells.every((cell) => cell.ok) ? 0 : 1)
