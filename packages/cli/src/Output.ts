/** A terminal for live status lines (a progress bar): raw writes, no newline added. */
export interface StatusTerminal {
  /** Writes text as is (ANSI escapes included). */
  readonly write: (text: string) => void
  /** The terminal's width in columns. */
  readonly columns: () => number
}

/** Where a command writes: data to `out`, diagnostics to `err`. Tests pass their own. */
export interface Output {
  readonly out: (text: string) => void
  readonly err: (text: string) => void
  /**
   * Present only when diagnostics go to an interactive terminal: commands draw live status lines on it.
   * Without it they print a plain line now and then instead.
   */
  readonly status?: StatusTerminal
}

/** The process's stdout and stderr (with a status terminal when stderr is a TTY). */
export const processOutput: Output = {
  out: (text) => process.stdout.write(text.endsWith("\n") ? text : `${text}\n`),
  err: (text) => process.stderr.write(text.endsWith("\n") ? text : `${text}\n`),
  ...(process.stderr.isTTY
    ? {
        status: {
          write: (text: string) => process.stderr.write(text),
          columns: () => process.stderr.columns || 80,
        },
      }
    : {}),
}

/** Renders rows as an aligned plain-text table with a header line. */
export const formatTable = (
  headers: ReadonlyArray<string>,
  rows: ReadonlyArray<ReadonlyArray<string>>,
): string => {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)))
  const line = (cells: ReadonlyArray<string>) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join("  ")
      .trimEnd()
  return [line(headers), ...rows.map(line)].join("\n")
}
