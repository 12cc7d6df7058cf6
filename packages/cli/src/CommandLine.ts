import { parseArgs } from "node:util"
import { UsageError, unknownWord } from "./UsageError.js"

/** A flag a command accepts: string flags take a value; `multiple` ones may repeat. */
export interface FlagSpec {
  readonly type: "string" | "boolean"
  readonly multiple?: boolean
  readonly short?: string
  readonly description: string
}

/** Parsed flags (strings, booleans or repeated strings) and positional arguments. */
export interface ParsedCommandLine {
  readonly flags: Readonly<Record<string, string | boolean | ReadonlyArray<string> | undefined>>
  readonly positionals: ReadonlyArray<string>
}

/**
 * Parses `argv` against `specs`, turning unknown flags into a `UsageError` with a "did you mean"
 * suggestion and a missing value into a clear message.
 */
export const parseCommandLine = (
  command: string,
  argv: ReadonlyArray<string>,
  specs: Readonly<Record<string, FlagSpec>>,
): ParsedCommandLine | UsageError => {
  const options: Record<string, { type: "string" | "boolean"; multiple?: boolean; short?: string }> = {}
  for (const [name, spec] of Object.entries(specs)) {
    options[name] = {
      type: spec.type,
      ...(spec.multiple ? { multiple: true } : {}),
      ...(spec.short ? { short: spec.short } : {}),
    }
  }
  try {
    const { values, positionals } = parseArgs({
      args: [...argv],
      options,
      strict: true,
      allowPositionals: true,
    })
    return { flags: values as ParsedCommandLine["flags"], positionals }
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error)
    const unknown = /Unknown option '(-{1,2}[^']+)'/.exec(message)
    if (unknown?.[1]) {
      return unknownWord(
        `flag for \`awa ${command}\``,
        unknown[1],
        Object.keys(specs).map((n) => `--${n}`),
      )
    }
    const missing = /Option '(?:-\w, )?(--[\w-]+) <value>' argument missing/.exec(message)
    if (missing?.[1])
      return new UsageError({ reason: `${missing[1]} needs a value (awa ${command} --help shows usage).` })
    return new UsageError({ reason: `${message} (awa ${command} --help shows usage).` })
  }
}

/** Formats flag specs as help lines. */
export const flagHelp = (specs: Readonly<Record<string, FlagSpec>>): string =>
  Object.entries(specs)
    .map(([name, spec]) => {
      const left = `  --${name}${spec.type === "string" ? " <value>" : ""}${spec.multiple ? " (repeatable)" : ""}`
      return `${left.padEnd(34)}${spec.description}`
    })
    .join("\n")

/** Fails when more than one of `names` was given. */
export const exclusive = (
  flags: ParsedCommandLine["flags"],
  names: ReadonlyArray<string>,
): UsageError | undefined => {
  const given = names.filter((n) => flags[n] !== undefined && flags[n] !== false)
  return given.length > 1
    ? new UsageError({
        reason: `${given.map((n) => `--${n}`).join(" and ")} cannot be used together; pick one.`,
      })
    : undefined
}
