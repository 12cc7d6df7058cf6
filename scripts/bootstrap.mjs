#!/usr/bin/env node
// Runs the README's commands on a machine that has only Node and npm: finds pnpm (or runs the pinned
// one through npx), installs the workspace with the frozen lockfile when needed, builds, and then runs
// the requested task. Usage: node scripts/bootstrap.mjs <setup|demo|test> [args...]
import { spawnSync } from "node:child_process"
import { existsSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs"
import { join } from "node:path"

const root = new URL("..", import.meta.url).pathname
const [task = "setup", ...args] = process.argv.slice(2)
const env = { ...process.env, TURBO_TELEMETRY_DISABLED: "1", TURBO_NO_UPDATE_NOTIFIER: "1" }

const run = (cmd, cmdArgs, options = {}) => {
  const result = spawnSync(cmd, cmdArgs, { cwd: root, stdio: "inherit", env, ...options })
  if (result.error) throw result.error
  return result.status ?? 1
}
const must = (cmd, cmdArgs) => {
  const status = run(cmd, cmdArgs)
  if (status !== 0) process.exit(status)
}

// Adds up the JSON reports every package's vitest run writes, and prints one closing line.
const summarizeTests = () => {
  let passed = 0
  let failed = 0
  let skipped = 0
  const unreported = []
  for (const dir of readdirSync(join(root, "packages"))) {
    const report = join(root, "packages", dir, ".vitest-results.json")
    if (!existsSync(report)) {
      // A package with tests that wrote no report did not run them (or uses another vitest config).
      if (existsSync(join(root, "packages", dir, "test"))) unreported.push(dir)
      continue
    }
    const r = JSON.parse(readFileSync(report, "utf8"))
    passed += r.numPassedTests ?? 0
    failed += (r.numFailedTests ?? 0) + (r.numRuntimeErrors ?? 0)
    skipped += (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0)
  }
  console.log(`\ntests: ${passed} passed, ${failed} failed${skipped > 0 ? `, ${skipped} skipped` : ""}`)
  if (unreported.length > 0) console.log(`tests: no report from packages/${unreported.join(", packages/")}`)
  return unreported.length
}

const hasPnpm = spawnSync("pnpm", ["--version"], { stdio: "ignore", env }).status === 0
const pnpm = hasPnpm ? ["pnpm"] : ["npx", "--yes", "pnpm@12"]
const pnpmRun = (pnpmArgs) => must(pnpm[0], [...pnpm.slice(1), ...pnpmArgs])

const lockfile = join(root, "pnpm-lock.yaml")
const marker = join(root, "node_modules", ".pnpm", "lock.yaml")
if (!existsSync(marker) || statSync(marker).mtimeMs < statSync(lockfile).mtimeMs) {
  pnpmRun(["install", "--frozen-lockfile"])
}
pnpmRun(["run", "build"])

switch (task) {
  case "setup":
    break
  case "demo":
    pnpmRun(["run", "awa", "demo", ...args])
    break
  case "test": {
    for (const dir of readdirSync(join(root, "packages")))
      rmSync(join(root, "packages", dir, ".vitest-results.json"), { force: true })
    const status = run(pnpm[0], [...pnpm.slice(1), "run", "test:run", ...args])
    const unreported = summarizeTests()
    process.exit(status !== 0 ? status : unreported > 0 ? 1 : 0)
    break
  }
  default:
    console.error(`bootstrap: unknown task "${task}" (use setup, demo or test)`)
    process.exit(2)
}
