import { createRequire } from "node:module"
import type { MissingDatabaseUrl } from "@awa/model/MigratorError"
import { runDemo } from "./commands/demo.js"
import { runDlq } from "./commands/dlq.js"
import { runJob } from "./commands/job.js"
import { runMigrate } from "./commands/migrate.js"
import { runPgmq } from "./commands/pgmq.js"
import { runQueue } from "./commands/queue.js"
import { runStorage } from "./commands/storage.js"
import { runWorker } from "./commands/worker.js"
import { ExitCode, exitCodeFor, exitCodeHelp } from "./ExitCode.js"
import { type Output, processOutput } from "./Output.js"
import { unknownWord } from "./UsageError.js"

type CommandRunner = (argv: ReadonlyArray<string>, output: Output) => Promise<number>

const commands: Record<string, { readonly run: CommandRunner; readonly summary: string }> = {
  migrate: { run: runMigrate, summary: "apply, inspect, dry-run or export the awa migration sets" },
  storage: {
    run: runStorage,
    summary:
      "status, prepare, enter-mixed, finalize, abort: move jobs between storage engines; prepare schemas",
  },
  job: { run: runJob, summary: "list, show, retry or cancel jobs" },
  queue: { run: runQueue, summary: "queue counts per state; pause, resume; enable or disable a queue's DLQ" },
  dlq: { run: runDlq, summary: "list, show, retry or purge dead-lettered jobs" },
  pgmq: {
    run: runPgmq,
    summary: "pgmq queues on the pgmq database: queues, metrics, send, read, purge, drop",
  },
  worker: { run: runWorker, summary: "run a worker for the job handlers a module exports (--tasks MODULE)" },
  demo: {
    run: runDemo,
    summary: "awa end to end: enqueue sample jobs, work them with a live progress bar, print the results",
  },
}

/** The version of this package (the `awa` binary), from its package.json. */
export const cliVersion = (): string =>
  (createRequire(import.meta.url)("../package.json") as { readonly version: string }).version

/** The top-level help text. */
export const rootHelp = (): string => `Usage: awa <command> [flags]

Commands:
${Object.entries(commands)
  .map(([name, c]) => `  ${name.padEnd(10)}${c.summary}`)
  .join("\n")}

Run \`awa <command> --help\` (or \`awa help <command>\`) for a command's flags, \`awa --version\` for the
version. Without a command (as without a subcommand) awa prints the help and exits 2.

${exitCodeHelp}`

/** The message printed for an error: the CLI's own wording where the library's speaks to API callers. */
const cliMessage = (error: unknown): string => {
  if ((error as { _tag?: unknown } | null)?._tag === "MissingDatabaseUrl") {
    return (error as MissingDatabaseUrl).role === "pgmq"
      ? "No database URL for the pgmq database. Pass --pgmq-database-url or set PGMQ_DATABASE_URL (it defaults to the primary database: --database-url or DATABASE_URL)."
      : "No database URL. Pass --database-url postgres://user:password@host:port/database or set DATABASE_URL."
  }
  return error instanceof Error ? error.message : String(error)
}

/**
 * Runs the `awa` command line in-process and returns its exit code. Errors are printed to
 * `output.err` as one message that says what to do next; nothing is thrown.
 */
export const runCli = async (
  argv: ReadonlyArray<string>,
  output: Output = processOutput,
): Promise<number> => {
  const [first, ...others] = argv
  if (first === "--version" || first === "-v") {
    output.out(cliVersion())
    return ExitCode.ok
  }
  // `awa help job list` is `awa job list --help`.
  const [name, ...rest] = first === "help" && others.length > 0 ? [...others, "--help"] : argv
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    output.out(rootHelp())
    return name === undefined ? ExitCode.usage : ExitCode.ok
  }
  try {
    const command = commands[name]
    if (!command) throw unknownWord("command", name, Object.keys(commands))
    return await command.run(rest, output)
  } catch (error) {
    const code = exitCodeFor(error)
    output.err(`awa ${name}: ${cliMessage(error)}`)
    if (code === ExitCode.internal && error instanceof Error && error.stack) output.err(error.stack)
    return code
  }
}
