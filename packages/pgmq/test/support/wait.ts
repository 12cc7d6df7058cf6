import { setTimeout as sleep } from "node:timers/promises"

/**
 * Polls `check` until it returns a value other than undefined/false, or fails with `what` after `timeoutMs`
 * (a safety net against hangs, not a timing assertion).
 */
export const waitFor = async <T>(
  what: string,
  check: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 15_000,
): Promise<T> => {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  for (;;) {
    try {
      const value = await check()
      if (value !== undefined && value !== false) return value
    } catch (error) {
      last = error
    }
    if (Date.now() > deadline) {
      throw new Error(
        `Timed out waiting for ${what}${last === undefined ? "" : ` (last error: ${String(last)})`}`,
      )
    }
    await sleep(10)
  }
}

/** A promise with its resolve function exposed, for handlers that must wait for the test. */
export const latch = <T = void>(): { promise: Promise<T>; resolve: (value: T) => void } => {
  let resolve!: (value: T) => void
  const promise = new Promise<T>((r) => {
    resolve = r
  })
  return { promise, resolve }
}
