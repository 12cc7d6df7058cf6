import { execFile } from "node:child_process"
import path from "node:path"
import { expect, it } from "vitest"

const packageRoot = path.resolve(import.meta.dirname, "../..")

it("fails for an engine that breaks the contract, naming the broken behaviour", async () => {
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith("VITEST")))
  const result = await new Promise<{ code: number; output: string }>((resolve) => {
    execFile(
      process.execPath,
      [
        path.join(packageRoot, "node_modules/vitest/vitest.mjs"),
        "run",
        "--config",
        "test/fixtures/broken-engine/vitest.config.ts",
        "--testNamePattern",
        "snooze|completes a job whose handler returns",
      ],
      { cwd: packageRoot, env: { ...env, NO_COLOR: "1" }, timeout: 180_000 },
      (error, stdout, stderr) =>
        resolve({
          code: error ? Number(error.code ?? 1) : 0,
          // biome-ignore lint/suspicious/noControlCharactersInRegex: strips terminal colours from the report.
          output: `${stdout}\n${stderr}`.replace(/\u001b\[[0-9;]*m/g, ""),
        }),
    )
  })
  expect(result.code, result.output).toBe(1)
  expect(result.output).toMatch(/FAIL .* > snooze > reschedules without consuming an attempt/)
  expect(result.output).toContain('+   "state": "retryable"')
  expect(result.output).toMatch(/✓ completes a job whose handler returns/)
  expect(result.output).toMatch(/Tests\s+1 failed \| 1 passed/)
})
