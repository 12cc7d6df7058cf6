// Finds the fenced code blocks of a Markdown file and the marker that says what the docs check does with
// each one. The convention (also stated at the top of README.md):
//
//   <!-- run -->               run it: sh blocks with bash (cwd and files carry over to later blocks of
//                              the same Markdown file), ts blocks with tsx, js blocks with node, sql
//                              blocks on DATABASE_URL (one simple query: several statements, one
//                              transaction); ts blocks are also typechecked. DATABASE_URL names a fresh
//                              database for the file.
//   <!-- run-until: REGEX -->  sh only: run it, send SIGINT once its output matches REGEX; it must exit 0.
//   <!-- save: PATH -->        write the block to PATH (relative to the current folder of the file's sh
//                              blocks) for later blocks to use; .ts files are typechecked.
//   <!-- typecheck -->         ts only: a complete module that is typechecked but not run.
//   <!-- skip: REASON -->      not checked, for the reason given (a synopsis, a fragment, sample output).
//   ```ts file=PATH            (no marker needed) a quote of the repository file PATH, which must match it.
//
// The marker is an HTML comment on the last non-blank line before the opening fence. A block without one
// fails the check, so every new block says how it stays true.

/** The markers the docs check understands, with the syntax shown in error messages. */
export const markerSyntax = [
  "<!-- run -->",
  "<!-- run-until: REGEX -->",
  "<!-- save: PATH -->",
  "<!-- typecheck -->",
  "<!-- skip: REASON -->",
]

const fenceOpen = /^( {0,3})(`{3,}|~{3,})(.*)$/

/**
 * Parses the marker comment `text` (the whole line), or returns an error message when it looks like a
 * marker but is malformed. Returns undefined when the line is not a marker comment at all.
 */
export const parseMarker = (text) => {
  const comment = /^\s*<!--\s*(.*?)\s*-->\s*$/.exec(text)
  if (comment === null) return undefined
  const body = comment[1]
  const match = /^(run-until|run|save|typecheck|skip)\s*(?::\s*(.*))?$/s.exec(body)
  if (match === null) return undefined
  const [, kind, argument = ""] = match
  const arg = argument.trim()
  switch (kind) {
    case "run":
    case "typecheck":
      return arg === "" ? { kind } : { error: `"<!-- ${kind} -->" takes no argument (found "${arg}")` }
    case "run-until":
      if (arg === "") return { error: "run-until needs a regular expression: <!-- run-until: REGEX -->" }
      try {
        return { kind, pattern: new RegExp(arg) }
      } catch (error) {
        return { error: `run-until: "${arg}" is not a regular expression (${error.message})` }
      }
    case "save":
      if (arg === "" || arg.startsWith("/") || arg.split("/").includes(".."))
        return { error: "save needs a relative path inside the project: <!-- save: src/tasks.ts -->" }
      return { kind, path: arg }
    case "skip":
      return arg === "" ? { error: "skip needs a reason: <!-- skip: REASON -->" } : { kind, reason: arg }
  }
  return undefined
}

/**
 * The fenced blocks of `text`: `{ line, lang, info, code, marker, file, problem }`, where `line` is the
 * 1-based line of the opening fence, `file` the `file=PATH` of the info string, and `problem` what is wrong
 * with its marking (undefined when it is marked correctly).
 */
export const findBlocks = (text) => {
  const lines = text.split("\n")
  const blocks = []
  for (let i = 0; i < lines.length; i++) {
    const open = fenceOpen.exec(lines[i])
    if (open === null) continue
    const [, indent, fence, rawInfo] = open
    const info = rawInfo.trim()
    if (fence[0] === "`" && info.includes("`")) continue
    let end = i + 1
    const close = new RegExp(`^ {0,3}${fence[0] === "`" ? "`" : "~"}{${fence.length},}\\s*$`)
    while (end < lines.length && !close.test(lines[end])) end++
    const code = lines
      .slice(i + 1, end)
      .map((line) => (indent.length > 0 && line.startsWith(indent) ? line.slice(indent.length) : line))
      .join("\n")
    const [lang = "", ...meta] = info.split(/\s+/)
    const file = meta.find((word) => word.startsWith("file="))?.slice("file=".length)
    let before = i - 1
    while (before >= 0 && lines[before].trim() === "") before--
    const markerLine = before >= 0 ? lines[before] : ""
    const parsed = parseMarker(markerLine)
    let marker
    let problem
    if (parsed?.error !== undefined) problem = `has a malformed marker (${parsed.error})`
    else if (parsed !== undefined) marker = parsed
    else if (file === undefined) problem = "has no marker"
    if (marker !== undefined && problem === undefined) {
      const language = lang.toLowerCase()
      const isShell = ["sh", "bash", "shell"].includes(language)
      const isCode = ["ts", "typescript", "js", "javascript", "mjs", "sql"].includes(language)
      if (marker.kind === "run" && !isShell && !isCode)
        problem = "cannot run: only sh, ts, js and sql blocks can (mark it skip, or save it to a file)"
      if (marker.kind === "run-until" && !isShell) problem = "uses run-until, which is for sh blocks only"
      if (marker.kind === "typecheck" && !["ts", "typescript"].includes(language))
        problem = "uses typecheck, which is for ts blocks only"
    }
    blocks.push({ line: i + 1, lang: lang.toLowerCase(), info, code, marker, file, problem })
    i = end
  }
  return blocks
}
