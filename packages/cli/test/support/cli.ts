// Runs the `awa` command line in-process with a controlled environment, capturing what it prints.
import { runCli } from "../../src/Cli.js"

/** What one `awa` run printed and returned. */
export interface CliResult {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

const isolated = [
  "DATABASE_URL",
  "PGMQ_DATABASE_URL",
  "AWA_POOLER",
  "AWA_ENGINE",
  "AWA_QUEUE_STORAGE_SCHEMA",
] as const

/**
 * Runs `awa argv` in this process with DATABASE_URL, PGMQ_DATABASE_URL, AWA_POOLER, AWA_ENGINE and
 * AWA_QUEUE_STORAGE_SCHEMA unset unless `env` sets them, and restores the environment afterwards (every
 * variable `env` sets included).
 */
export const awa = async (
  argv: ReadonlyArray<string>,
  env: Record<string, string | undefined> = {},
): Promise<CliResult> => {
  const out: Array<string> = []
  const err: Array<string> = []
  const saved = Object.fromEntries([...isolated, ...Object.keys(env)].map((k) => [k, process.env[k]]))
  for (const k of isolated) delete process.env[k]
  for (const [k, v] of Object.entries(env)) if (v !== undefined) process.env[k] = v
  try {
    const code = await runCli(argv, { out: (t) => out.push(t), err: (t) => err.push(t) })
    return { code, stdout: out.join("\n"), stderr: err.join("\n") }
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k]
      else process.env[k] = v
    }
  }
}

/** Runs `awa argv --json` against `url` and parses its output, failing with stderr when it did not exit 0. */
export const awaJson = async <T>(argv: ReadonlyArray<string>, url: string): Promise<T> => {
  const r = await awa([...argv, "--json", "--database-url", url])
  if (r.code !== 0) throw new Error(`awa ${argv.join(" ")} exited ${r.code}: ${r.stderr}`)
  return JSON.parse(r.stdout) as T
}
