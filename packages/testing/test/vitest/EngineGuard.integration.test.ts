import { execFile } from "node:child_process"
import path from "node:path"
import { describe, expect, it } from "vitest"
import { engineSkipNote, onlyOnEngine } from "../../src/vitest/EngineGuard.js"

const packageRoot = path.resolve(import.meta.dirname, "../..")

const runFixture = (env: NodeJS.ProcessEnv): Promise<{ code: number; output: string }> =>
  new Promise((resolve) => {
    execFile(
      process.execPath,
      [
        path.join(packageRoot, "node_modules/vitest/vitest.mjs"),
        "run",
        "--config",
        "test/fixtures/engine-guard/vitest.config.ts",
        "--reporter=verbose",
      ],
      { cwd: packageRoot, env, timeout: 120_000 },
      (error, stdout, stderr) =>
        resolve({
          code: error ? Number(error.code ?? 1) : 0,
          // biome-ignore lint/suspicious/noControlCharactersInRegex: strips terminal colours from the report.
          output: `${stdout}\n${stderr}`.replace(/\u001b\[[0-9;]*m/g, ""),
        }),
    )
  })

describe("onlyOnEngine", () => {
  it("skips with a note naming the engines and the reason, only when the engine differs", () => {
    const calls: Array<[boolean, string | undefined]> = []
    const ctx = { skip: (condition: boolean, note?: string) => void calls.push([condition, note]) }
    onlyOnEngine(ctx, "canonical", "inspects awa.jobs", { AWA_TEST_ENGINE: "canonical" })
    onlyOnEngine(ctx, ["queue_storage"], "inspects ring partitions", {})
    expect(calls).toEqual([
      [false, "engine-specific (canonical only, running canonical): inspects awa.jobs"],
      [true, "engine-specific (queue_storage only, running canonical): inspects ring partitions"],
    ])
    expect(engineSkipNote(["canonical", "queue_storage"], "why", "canonical")).toBe(
      "engine-specific (canonical, queue_storage only, running canonical): why",
    )
  })

  it("rejects an unknown AWA_TEST_ENGINE instead of skipping", () => {
    const ctx = { skip: () => {} }
    expect(() => onlyOnEngine(ctx, "canonical", "x", { AWA_TEST_ENGINE: "nope" })).toThrow(
      'AWA_TEST_ENGINE="nope" names no storage engine',
    )
  })
})

it("in a real vitest run, runs matching tests and skips the others with their reason shown", async () => {
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith("VITEST")))
  const result = await runFixture({
    ...env,
    NO_COLOR: "1",
    AWA_TEST_ENGINE: "canonical",
    AWA_FIXTURE_ENGINE: "canonical",
  })
  expect(result.code, result.output).toBe(0)
  expect(result.output).toMatch(/✓ .*runs on canonical only/)
  expect(result.output).toMatch(/✓ .*runs on both \[canonical, queue_storage only: either engine\]/)
  expect(result.output).toContain(
    "engine-specific (queue_storage only, running canonical): inspects ring partitions",
  )
  expect(result.output).toMatch(/↓ .*reclaims settled slots \[queue_storage only: counts TRUNCATEd slots\]/)
  expect(result.output).toMatch(/↓ .*runs on queue storage only.*\[engine-specific \(queue_storage only/)
  expect(result.output).toMatch(/Tests\s+2 passed \| 2 skipped \(4\)/)
})
