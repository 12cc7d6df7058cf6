// Watches a child process (a real `awa` binary): collects what it prints and waits for lines.
import type { ChildProcessWithoutNullStreams } from "node:child_process"

/** Collects a child's output; `line` resolves when stdout matches, and fails if the child exits first. */
export const watch = (child: ChildProcessWithoutNullStreams) => {
  let stdout = ""
  let stderr = ""
  const waiters: Array<{ pattern: RegExp; resolve: () => void }> = []
  const check = () => {
    for (const w of [...waiters]) {
      if (w.pattern.test(stdout)) {
        waiters.splice(waiters.indexOf(w), 1)
        w.resolve()
      }
    }
  }
  child.stdout.on("data", (d: Buffer) => {
    stdout += d.toString()
    check()
  })
  child.stderr.on("data", (d: Buffer) => {
    stderr += d.toString()
  })
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)))
  return {
    get stdout() {
      return stdout
    },
    get stderr() {
      return stderr
    },
    exited,
    line: (pattern: RegExp, what: string) =>
      Promise.race([
        new Promise<void>((resolve) => {
          waiters.push({ pattern, resolve })
          check()
        }),
        exited.then((code) => {
          throw new Error(`the process exited (${code}) before printing ${what}:\n${stdout}\n${stderr}`)
        }),
      ]),
  }
}
