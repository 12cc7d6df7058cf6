#!/usr/bin/env node
import { runCli } from "./Cli.js"

// Exit as soon as the command is done: nothing of awa's runs after it, and code the command loaded (such
// as a worker's handler that ignored its shutdown signal) must not hold the process open.
process.exit(await runCli(process.argv.slice(2)))
