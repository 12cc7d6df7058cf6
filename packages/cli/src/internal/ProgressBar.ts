// A live progress bar in plain ANSI on an interactive terminal; elsewhere (pipes, CI logs) a plain line
// every few seconds instead, so logs stay readable.
import type { Output } from "../Output.js"

/** What the bar shows: how much of the total is done, and a status text after it. */
export interface Progress {
  readonly done: number
  readonly total: number
  readonly text: string
}

const clearLine = "\x1b[2K\r"
const hideCursor = "\x1b[?25l"
const showCursor = "\x1b[?25h"

/** Renders `[#####-----]  54%` for `done` of `total` with a bar `width` cells wide. */
export const renderBar = (done: number, total: number, width: number): string => {
  const ratio = total <= 0 ? 1 : Math.min(1, Math.max(0, done / total))
  const filled = Math.round(ratio * width)
  return `[${"█".repeat(filled)}${"░".repeat(width - filled)}] ${String(Math.floor(ratio * 100)).padStart(3)}%`
}

/** Draws progress: redraws one line on a TTY, prints a line every `lineIntervalMs` elsewhere. */
export class ProgressBar {
  readonly #output: Output
  readonly #lineIntervalMs: number
  #lastLine = 0
  #lastText = ""
  #drawn = false

  constructor(output: Output, options: { readonly lineIntervalMs?: number } = {}) {
    this.#output = output
    this.#lineIntervalMs = options.lineIntervalMs ?? 1000
  }

  /** True when the bar redraws in place (an interactive terminal). */
  get live(): boolean {
    return this.#output.status !== undefined
  }

  /** Shows the current progress (on a TTY at once; otherwise only when a line is due). */
  update(progress: Progress): void {
    const status = this.#output.status
    const line = `${renderBar(progress.done, progress.total, 24)} ${progress.text}`
    if (status !== undefined) {
      const columns = Math.max(20, status.columns() - 1)
      status.write(
        `${this.#drawn ? "" : hideCursor}${clearLine}${line.length > columns ? `${line.slice(0, columns - 1)}…` : line}`,
      )
      this.#drawn = true
      return
    }
    const now = Date.now()
    if (now - this.#lastLine < this.#lineIntervalMs) return
    this.#lastLine = now
    this.#lastText = line
    this.#output.err(line)
  }

  /** Draws the final state and ends the live line, so later output starts on a fresh line. */
  finish(progress: Progress): void {
    const status = this.#output.status
    if (status !== undefined) {
      this.update(progress)
      status.write(`\n${showCursor}`)
      this.#drawn = false
      return
    }
    const line = `${renderBar(progress.done, progress.total, 24)} ${progress.text}`
    if (line !== this.#lastText) this.#output.err(line)
    this.#lastText = line
  }

  /** Restores the cursor without drawing (after an interruption). */
  abandon(): void {
    if (this.#drawn) this.#output.status?.write(`\n${showCursor}`)
    this.#drawn = false
  }
}
