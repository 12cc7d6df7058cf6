#!/usr/bin/env node
// `pnpm mutation --engine canonical|queue_storage [--only id,id] [--mode single|split] [--list]
//   [--all-tests] [--with-model | --model-only]`
//
// Judges the engine contract suite: applies deliberate mistakes to an engine's sources, one at a time, runs
// the contract suite (packages/testing/test/contract.integration.test.ts) against each mutant, and reports
// which mistakes the contract caught and which it missed, with a score. A good contract catches them all.
//
// The mistakes of an engine are listed in scripts/mutations/<engine>.mjs (an array of { id, mistake, file,
// search, replace, judges? }). Each `search` must occur exactly once in its file, else the mistake is
// reported as "no longer applies" (the code moved on: update or drop the entry). Two kinds of files can be
// mutated, neither in place:
//   - TypeScript under packages/runtime/src: the script copies that directory to
//     packages/runtime/.mutation/<run>/src, applies the mistake there, and runs vitest with @awa/runtime (and
//     the runtime tests' own ../src imports) resolved to the copy;
//   - SQL under migrations/ (the queue-storage engine's functions live there): the script copies the folder,
//     applies the mistake, and renders the migrator's bundle module from the copy (as `pnpm codegen` does,
//     scripts/migrations-bundle.mjs); vitest resolves the migrator's bundle import to it, so every test
//     database is migrated with the mutated SQL (its fingerprint changes, so no template made from the real
//     SQL is reused).
// Nothing needs rebuilding and the real sources are never modified; the scratch copy is removed on exit, on
// Ctrl-C too. The configs are packages/testing/vitest.mutation.config.ts and
// packages/runtime/vitest.mutation.config.ts.
//
// Judges: by default a mistake is judged by the contract suite. An entry may name more test files in
// `judges` ("contract", "model", or "runtime:test/<file>" for the runtime's own tests, such as the ring and
// counter tests that see what the contract cannot: a truncated slot, a counter off by one). They run in
// order and the first that fails catches the mistake.
//
// Not part of .ci/run: it runs the judges once per mistake (plus once unmutated, which must pass), in one
// database mode (default single). Needs the other packages built (`pnpm build`).
import { spawn } from "node:child_process"
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { join, relative, resolve } from "node:path"
import { pathToFileURL } from "node:url"
import { bundleModule, readMigrations } from "./migrations-bundle.mjs"

const root = resolve(new URL("..", import.meta.url).pathname)
const testingDir = join(root, "packages", "testing")
const runtimeDir = join(root, "packages", "runtime")
const runtimeSrc = join(runtimeDir, "src")
const migrationsDir = join(root, "migrations")
const engines = ["canonical", "queue_storage"]

const usage = () => {
  console.error(
    "usage: pnpm mutation --engine canonical|queue_storage [--only id,...] [--mode single|split] [--list] [--all-tests] [--with-model | --model-only]",
  )
  process.exit(2)
}
const option = (name) => {
  const index = process.argv.indexOf(`--${name}`)
  if (index === -1) return undefined
  const value = process.argv[index + 1]
  if (value === undefined || value.startsWith("--")) usage()
  return value
}
const engine = option("engine") ?? "canonical"
if (!engines.includes(engine)) {
  console.error(
    `mutation: --engine ${JSON.stringify(engine)} names no engine; use one of ${engines.join(", ")}.`,
  )
  process.exit(2)
}
const mode = option("mode") ?? "single"
if (mode !== "single" && mode !== "split") {
  console.error(`mutation: --mode ${JSON.stringify(mode)}: use single or split.`)
  process.exit(2)
}
const only = option("only")?.split(",").filter(Boolean)
// By default a mutant's run stops at its first failing test (a caught mistake costs one failure, not the
// whole suite); --all-tests runs every test to list all that catch it. --with-model adds the model-based test.
const allTests = process.argv.includes("--all-tests")
// --model-only judges the model-based test alone (what random interleavings catch without the suite).
const withModel = process.argv.includes("--with-model")
const modelOnly = process.argv.includes("--model-only")
// The judges every mistake gets; an entry's own `judges` are added after them.
const defaultJudges = modelOnly ? ["model"] : ["contract", ...(withModel ? ["model"] : [])]
const judgeFiles = {
  contract: { dir: testingDir, file: "test/contract.integration.test.ts" },
  model: { dir: testingDir, file: "test/EngineModel.integration.test.ts" },
}
/** Where a judge's test file lives: "contract", "model", or "runtime:test/<file>". */
const judgeOf = (name) => {
  if (judgeFiles[name] !== undefined) return judgeFiles[name]
  const runtime = /^runtime:(test\/[A-Za-z0-9_.-]+\.test\.ts)$/.exec(name)
  if (runtime && existsSync(join(runtimeDir, runtime[1]))) return { dir: runtimeDir, file: runtime[1] }
  return undefined
}
const judgesFor = (mutation) => [
  ...defaultJudges,
  ...(modelOnly ? [] : (mutation?.judges ?? []).filter((j) => !defaultJudges.includes(j))),
]

const listFile = join(root, "scripts", "mutations", `${engine}.mjs`)
if (!existsSync(listFile)) {
  console.error(`mutation: no list of mistakes for ${engine} (${relative(root, listFile)}).`)
  process.exit(2)
}
const all = (await import(pathToFileURL(listFile).href)).default
const seen = new Set()
for (const m of all) {
  for (const field of ["id", "mistake", "file", "search", "replace"]) {
    if (typeof m[field] !== "string") {
      console.error(`mutation: ${relative(root, listFile)}: entry ${JSON.stringify(m.id)} lacks "${field}".`)
      process.exit(2)
    }
  }
  if (seen.has(m.id)) {
    console.error(`mutation: ${relative(root, listFile)}: duplicate id ${m.id}.`)
    process.exit(2)
  }
  if (
    m.judges !== undefined &&
    (!Array.isArray(m.judges) || m.judges.some((j) => judgeOf(j) === undefined))
  ) {
    console.error(
      `mutation: ${relative(root, listFile)}: entry ${m.id}: judges must be "contract", "model" or "runtime:test/<existing file>" (got ${JSON.stringify(m.judges)}).`,
    )
    process.exit(2)
  }
  seen.add(m.id)
}
if (only !== undefined) {
  const unknown = only.filter((id) => !seen.has(id))
  if (unknown.length > 0) {
    console.error(`mutation: --only names unknown mistakes: ${unknown.join(", ")}.`)
    process.exit(2)
  }
}
const mutations = only === undefined ? all : all.filter((m) => only.includes(m.id))

if (process.argv.includes("--list")) {
  for (const m of mutations)
    console.log(
      `${m.id.padEnd(36)} ${m.mistake}\n${" ".repeat(37)}file ${m.file}; judged by ${judgesFor(m).join(" + ")}`,
    )
  process.exit(0)
}
if (mutations.length === 0) {
  console.log(`mutation: the list for ${engine} is empty (${relative(root, listFile)}); nothing to judge.`)
  process.exit(0)
}
for (const pkg of ["model", "migrator"]) {
  if (!existsSync(join(root, "packages", pkg, "dist"))) {
    console.error(`mutation: packages/${pkg}/dist is missing; run \`pnpm build\` first.`)
    process.exit(2)
  }
}

const scratchRoot = join(root, "packages", "runtime", ".mutation")
const scratch = join(scratchRoot, `run-${process.pid}`)
const scratchSrc = join(scratch, "src")
const scratchMigrations = join(scratch, "migrations")
const scratchBundle = join(scratch, "bundledMigrations.generated.js")
let child
const cleanup = () => rmSync(scratch, { recursive: true, force: true })
process.on("exit", cleanup)
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.on(signal, () => {
    child?.kill("SIGTERM")
    cleanup()
    process.exit(130)
  })
}
// Scratch copies of runs that were killed too hard to clean up (SIGKILL) go now.
const isAlive = (pid) => {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return error.code === "EPERM"
  }
}
for (const entry of existsSync(scratchRoot) ? readdirSync(scratchRoot) : []) {
  const pid = Number(/^run-(\d+)$/.exec(entry)?.[1])
  if (Number.isInteger(pid) && pid > 0 && !isAlive(pid))
    rmSync(join(scratchRoot, entry), { recursive: true, force: true })
}

/** Runs vitest on one judge's test file; resolves to its exit status and output. */
const vitestRun = (judge, bail) =>
  new Promise((resolvePromise) => {
    let output = ""
    child = spawn(
      process.execPath,
      [vitest, "run", "--config", "vitest.mutation.config.ts", ...(bail ? ["--bail=1"] : []), judge.file],
      {
        cwd: judge.dir,
        env: {
          ...process.env,
          AWA_TEST_ENGINE: engine,
          AWA_TEST_DB_MODE: mode,
          AWA_MUTATION_RUNTIME_SRC: scratchSrc,
          AWA_MUTATION_MIGRATIONS_BUNDLE: scratchBundle,
          AWA_MUTATION_RESULTS: resultsFile,
        },
        stdio: ["ignore", "pipe", "pipe"],
      },
    )
    const keep = (chunk) => {
      output = (output + chunk).slice(-20_000)
    }
    child.stdout.on("data", keep)
    child.stderr.on("data", keep)
    child.on("close", (status) => {
      child = undefined
      resolvePromise({ status, output })
    })
  })

const vitest = join(testingDir, "node_modules", "vitest", "vitest.mjs")
const resultsFile = join(scratch, "results.json")

/** Applies `mutation` to the scratch copy of its file; returns a verdict when it cannot be applied. */
const applyMutation = (mutation) => {
  const target = resolve(root, mutation.file)
  const base = target.startsWith(`${runtimeSrc}/`)
    ? [runtimeSrc, scratchSrc]
    : target.startsWith(`${migrationsDir}/`) && target.endsWith(".sql")
      ? [migrationsDir, scratchMigrations]
      : undefined
  if (base === undefined) {
    return {
      status: "unsupported",
      detail: "only files under packages/runtime/src and SQL files under migrations/ can be mutated",
    }
  }
  const copy = join(base[1], relative(base[0], target))
  if (!existsSync(copy)) return { status: "no longer applies", detail: `${mutation.file} does not exist` }
  const text = readFileSync(copy, "utf8")
  const count = text.split(mutation.search).length - 1
  if (count !== 1) {
    return {
      status: "no longer applies",
      detail: `the search text occurs ${count} times in ${mutation.file} (must be exactly once)`,
    }
  }
  writeFileSync(
    copy,
    text.replace(mutation.search, () => mutation.replace),
  )
  return undefined
}

/** Runs one judge; returns passed, failed (with the failing tests) or did not load. */
const judge = async (name, mutation) => {
  rmSync(resultsFile, { force: true })
  const result = await vitestRun(judgeOf(name), !allTests && mutation !== undefined)
  let report
  try {
    report = JSON.parse(readFileSync(resultsFile, "utf8"))
  } catch {
    report = undefined
  }
  const failed = []
  let ran = 0
  for (const file of report?.testResults ?? []) {
    for (const test of file.assertionResults ?? []) {
      if (test.status === "passed" || test.status === "failed") ran++
      if (test.status === "failed") failed.push(`${name}: ${test.title}`)
    }
  }
  if (result.status === 0) return { status: "passed", ran }
  // With --bail the skipped tests are not failures: a load error shows as no test run at all.
  if (ran === 0) {
    const tail = result.output.trim().split("\n").slice(-15).join("\n")
    return { status: "did not load", detail: `${name}: ${tail}` }
  }
  return { status: "failed", ran, failed }
}

/**
 * Copies the pristine sources and migrations, applies `mutation` (if any), renders the migrations bundle, and
 * runs the judges in order until one fails; returns what happened. Unmutated, `judges` are all of them.
 */
const run = async (mutation, judges = judgesFor(mutation)) => {
  rmSync(scratchSrc, { recursive: true, force: true })
  rmSync(scratchMigrations, { recursive: true, force: true })
  mkdirSync(scratch, { recursive: true })
  cpSync(runtimeSrc, scratchSrc, { recursive: true })
  cpSync(migrationsDir, scratchMigrations, { recursive: true })
  if (mutation !== undefined) {
    const refused = applyMutation(mutation)
    if (refused !== undefined) return refused
  }
  writeFileSync(scratchBundle, bundleModule(readMigrations(scratchMigrations), "js"))
  let ran = 0
  for (const name of judges) {
    const outcome = await judge(name, mutation)
    ran += outcome.ran ?? 0
    if (outcome.status !== "passed") return { ...outcome, ran }
  }
  return { status: "passed", ran }
}

const allJudges = [...new Set(mutations.flatMap((m) => judgesFor(m)))]
console.log(
  `mutation: ${engine} engine, ${mode} databases, ${mutations.length} mistakes, judged by ${defaultJudges.join(" + ")}` +
    (allJudges.length > defaultJudges.length
      ? ` (some also by ${allJudges.filter((j) => !defaultJudges.includes(j)).join(", ")})`
      : ""),
)
const started = Date.now()
const baseline = await run(undefined, allJudges)
if (baseline.status !== "passed") {
  console.error(
    `mutation: the judges (${allJudges.join(", ")}) do not pass on the unmodified ${engine} engine (${baseline.status}); ` +
      "fix that first.",
  )
  if (baseline.failed) console.error(`  failing: ${baseline.failed.join("; ")}`)
  if (baseline.detail) console.error(baseline.detail)
  process.exit(1)
}
console.log(`mutation: baseline passes (${baseline.ran} tests)\n`)

const rows = []
for (const mutation of mutations) {
  const outcome = await run(mutation)
  const verdict =
    outcome.status === "failed"
      ? "caught"
      : outcome.status === "passed"
        ? "MISSED"
        : outcome.status === "did not load"
          ? "INVALID"
          : outcome.status === "unsupported"
            ? "UNSUPPORTED"
            : "NO LONGER APPLIES"
  rows.push({ mutation, verdict, outcome })
  const detail =
    outcome.status === "failed"
      ? `by ${outcome.failed.length} test${outcome.failed.length === 1 ? "" : "s"}: ${outcome.failed.slice(0, 2).join("; ")}${outcome.failed.length > 2 ? "; ..." : ""}`
      : outcome.status === "passed"
        ? `${judgesFor(mutation).join(" + ")} pass with this mistake: ${mutation.mistake}`
        : (outcome.detail ?? "")
  console.log(`${verdict.padEnd(17)} ${mutation.id}\n${" ".repeat(18)}${detail}`)
}

const caught = rows.filter((r) => r.verdict === "caught").length
const judged = rows.filter((r) => r.verdict === "caught" || r.verdict === "MISSED").length
const broken = rows.length - judged
console.log(
  `\nmutation score (${engine}): ${caught}/${judged} mistakes caught` +
    (broken > 0 ? `, ${broken} not judged (no longer apply, unsupported or invalid)` : "") +
    ` in ${Math.round((Date.now() - started) / 1000)} s`,
)
const missed = rows.filter((r) => r.verdict !== "caught")
if (missed.length > 0) {
  console.log("not caught:")
  for (const r of missed) console.log(`  ${r.verdict}: ${r.mutation.id} (${r.mutation.mistake})`)
}
process.exit(missed.length === 0 ? 0 : 1)
