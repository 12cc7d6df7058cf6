/**
 * Best-effort cleanup of embedded Postgres servers when the process exits or is signalled before their
 * `stop()` ran: the postmaster gets an immediate-shutdown signal and its temp directory is removed.
 * Everything here is synchronous because the `exit` event allows nothing else.
 */
import fs from "node:fs"

/** A server to clean up at exit: its temp directory and (once known) its postmaster pid. */
export interface ExitCleanupEntry {
  readonly directory: string
  readonly pid: () => number | undefined
}

interface ExitCleanupState {
  readonly entries: Set<ExitCleanupEntry>
  installed: boolean
}

// Kept on globalThis so that test runners which evaluate this module once per test file still install
// one set of process listeners per process.
const stateKey = Symbol.for("@awa/testing/ExitCleanup")
const state: ExitCleanupState = ((globalThis as Record<symbol, unknown>)[stateKey] as
  | ExitCleanupState
  | undefined) ?? { entries: new Set(), installed: false }
;(globalThis as Record<symbol, unknown>)[stateKey] = state
const entries = state.entries

const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM"
  }
}

const cleanupNow = (): void => {
  for (const entry of entries) {
    const pid = entry.pid()
    try {
      // SIGQUIT is Postgres's immediate shutdown: the postmaster and its backends exit at once.
      if (pid !== undefined && isAlive(pid)) process.kill(pid, "SIGQUIT")
    } catch {}
    try {
      fs.rmSync(entry.directory, { recursive: true, force: true, maxRetries: 5, retryDelay: 20 })
    } catch {}
  }
  entries.clear()
}

const signals = ["SIGINT", "SIGTERM", "SIGHUP"] as const

const install = (): void => {
  if (state.installed) return
  state.installed = true
  process.once("exit", cleanupNow)
  for (const signal of signals) {
    const onSignal = (): void => {
      cleanupNow()
      // When nobody else handles the signal, restore Node's default behaviour (terminate) instead of
      // silently swallowing it.
      if (process.listenerCount(signal) === 1) {
        process.off(signal, onSignal)
        process.kill(process.pid, signal)
      }
    }
    process.on(signal, onSignal)
  }
}

/** Registers a server for cleanup at exit; the returned function unregisters it after a normal stop. */
export const registerExitCleanup = (entry: ExitCleanupEntry): (() => void) => {
  install()
  entries.add(entry)
  return () => {
    entries.delete(entry)
  }
}
