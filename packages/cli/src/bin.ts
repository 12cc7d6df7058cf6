#!/usr/bin/env node
import { runCli } from "./Cli.js"

const code = await runCli(process.argv.slice(2))
process.exitCode = code
// Exit as soon as the command is done: nothing of awa's runs after it, and code the command loaded (such
// as a worker's handler that ignored its shutdown signal) must not hold the process open. Output is
// flushed first (pipes are asynchronous on macOS, so exiting at once could cut it short).
await Promise.all(
  [process.stdout, process.stderr].map(
    (stream) =>
      new Promise<void>((resolve) =>
        stream.writableLength === 0 ? resolve() : stream.write("", () => resolve()),
      ),
  ),
)
process.exit(code)
