#!/usr/bin/env node
// Runs the engine contract suite (packages/testing/test/contract.integration.test.ts, plus the model-based
// test EngineModel.integration.test.ts) for every engine
// @awa/testing implements, crossed with both database modes: AWA_TEST_ENGINE x AWA_TEST_DB_MODE, one vitest
// run per cell; plus, when queue_storage is among the engines, one more cell for queue storage in a custom
// schema prepared like `awa storage prepare-queue-storage-schema` does (AWA_TEST_QUEUE_STORAGE_SCHEMA). Then
// prints the matrix with each cell's time and exits non-zero when any cell failed.
// Usage: node scripts/contract-matrix.mjs [--engines canonical,...] [--modes single,split]
//          [--queue-storage-schema NAME]   (the custom schema's cell; default contract_tenant, "awa" leaves it out)
// Needs the packages built (`pnpm build`): the engine list comes from @awa/testing's dist.
import { spawnSync } from "node:child_process"
import { existsSync } from "node:fs"
import { join } from "node:path"
import { performance } from "node:perf_hooks"
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

const { parseQueueStorageSchema } = await import(
  pathToFileURL(join(root, "packages", "runtime", "dist", "EngineSelection.js")).href
)

const optionValue = (name, what) => {
  const index = process.argv.indexOf(`--${name}`)
  if (index === -1) return undefined
  const value = process.argv[index + 1]
  if (value === undefined || value.startsWith("--")) {
    console.error(`contract-matrix: --${name} needs ${what}`)
    process.exit(2)
  }
  return value
}
const option = (name) => optionValue(name, "a comma-separated list")?.split(",").filter(Boolean)
let engines
let modes
let customSchema
try {
  // Unknown names fail here with the valid ones listed, rather than running nothing.
  engines = option("engines")?.map((e) => parseTestEngine(e, "--engines")) ?? testEngineNames
  modes = option("modes")?.map((m) => parseTestDbMode(m, "--modes")) ?? testDbModes
  customSchema =
    parseQueueStorageSchema(optionValue("queue-storage-schema", "a schema name"), "--queue-storage-schema") ??
    "contract_tenant"
} catch (error) {
  console.error(`contract-matrix: ${error.message}`)
  process.exit(2)
}

const plan = engines.flatMap((engine) => modes.map((mode) => ({ engine, mode, schema: "awa" })))
if (engines.includes("queue_storage") && customSchema !== "awa") {
  plan.push({ engine: "queue_storage", mode: modes[0] ?? "single", schema: customSchema })
}

const vitest = join(testingDir, "node_modules", "vitest", "vitest.mjs")
const cells = []
for (const { engine, mode, schema } of plan) {
  const label = `${engine} x ${mode}${schema === "awa" ? "" : ` x schema ${schema}`}`
  console.log(
    `\ncontract-matrix: AWA_TEST_ENGINE=${engine} AWA_TEST_DB_MODE=${mode} AWA_TEST_QUEUE_STORAGE_SCHEMA=${schema}`,
  )
  const start = performance.now()
  // The contract suite, and (once per engine: it is the slowest file and does not depend on the layout) the
  // model-based test that checks random interleavings against a model of it.
  const withModel = mode === (modes[0] ?? "single") && schema === "awa"
  const files = [
    "test/contract.integration.test.ts",
    ...(withModel ? ["test/EngineModel.integration.test.ts"] : []),
  ]
  const result = spawnSync(process.execPath, [vitest, "run", ...files], {
    cwd: testingDir,
    stdio: "inherit",
    // AWA_ENGINE follows the cell too: @awa/testing refuses an AWA_ENGINE that disagrees with AWA_TEST_ENGINE.
    env: {
      ...process.env,
      AWA_TEST_ENGINE: engine,
      AWA_ENGINE: engine,
      AWA_TEST_DB_MODE: mode,
      AWA_TEST_QUEUE_STORAGE_SCHEMA: schema,
    },
  })
  cells.push({ label, ok: result.status === 0, seconds: (performance.now() - start) / 1000 })
}
console.log("\ncontract-matrix:")
for (const cell of cells)
  console.log(`  ${cell.ok ? "pass" : "FAIL"}  ${cell.label}  (${cell.seconds.toFixed(1)} s)`)
process.exit(cells.every((cell) => cell.ok) ? 0 : 1)
