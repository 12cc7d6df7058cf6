import { runDemo } from "./commands/demo.js"
import { runDlq } from "./commands/dlq.js"
import { runJob } from "./commands/job.js"
import { runMigrate } from "./commands/migrate.js"
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
    summary: "prepare-queue-storage-schema: install the queue-storage set in a custom schema",
  },
  job: { run: runJob, summary: "list, show, retry or cancel jobs" },
  queue: { run: runQueue, summary: "queue counts per state; pause, resume; enable or disable a queue's DLQ" },
  dlq: { run: runDlq, summary: "list, show, retry or purge dead-lettered jobs" },
  worker: { run: runWorker, summary: "run a worker for the job handlers a module exports (--tasks MODULE)" },
  demo: {
    run: runDemo,
    summary: "awa end to end: enqueue sample jobs, work them with a live progress bar, print the results",
  },
}

/** The top-level help text. */
export const rootHelp = (): string => `Usage: awa <command> [flags]

Commands:
${Object.entries(commands)
  .map(([name, c]) => `  ${name.padEnd(10)}${c.summary}`)
  .join("\n")}

Run \`awa <command> --help\` for a command's flags.

${exitCodeHelp}`

/**
 * Runs the `awa` command line in-process and returns its exit code. Errors are printed to
 * `output.err` as one message that says what to do next; nothing is thrown.
 */
export const runCli = async (
  argv: ReadonlyArray<string>,
  output: Output = processOutput,
): Promise<number> => {
  const [name, ...rest] = argv
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
    const message = error instanceof Error ? error.message : String(error)
    output.err(`awa ${name}: ${message}`)
    if (code === ExitCode.internal && error instanceof Error && error.stack) output.err(error.stack)
    return code
  }
}
