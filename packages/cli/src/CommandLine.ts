import { parseArgs } from "node:util"
import { poolerFlag } from "./internal/CommonFlags.js"
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

/** A command that connects (it takes `--database-url`) also takes `--pooler`, placed right after it. */
const withConnectionFlags = (
  specs: Readonly<Record<string, FlagSpec>>,
): Readonly<Record<string, FlagSpec>> => {
  if (!("database-url" in specs) || "pooler" in specs) return specs
  const all: Record<string, FlagSpec> = {}
  for (const [name, spec] of Object.entries(specs)) {
    all[name] = spec
    if (name === "database-url") all.pooler = poolerFlag
  }
  return all
}

const negativeNumber = /^-[0-9]/

/**
 * Node's `parseArgs` reads `-1` as a short flag, so `awa job get -1` would report an unknown flag and
 * `--limit -1` an "ambiguous" argument. A negative number right after a flag that takes a value becomes that
 * flag's value (as if written `--limit=-1`), so its own validation explains what is wrong; anywhere else it
 * is a positional argument, hidden behind a placeholder while parsing and restored afterwards.
 */
const protectNegativeNumbers = (
  argv: ReadonlyArray<string>,
  specs: Readonly<Record<string, FlagSpec>>,
): { readonly args: Array<string>; readonly restore: (positional: string) => string } => {
  const takesValue = (arg: string): string | undefined => {
    const name = arg.startsWith("--")
      ? arg.slice(2)
      : /^-\w$/.test(arg)
        ? Object.keys(specs).find((n) => specs[n]?.short === arg.slice(1))
        : undefined
    return name !== undefined && specs[name]?.type === "string" ? name : undefined
  }
  const args: Array<string> = []
  const hidden: Array<string> = []
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string
    if (arg === "--") {
      args.push(...argv.slice(i))
      break
    }
    const flag = takesValue(arg)
    const next = argv[i + 1]
    if (flag !== undefined && next !== undefined && negativeNumber.test(next)) {
      args.push(`--${flag}=${next}`)
      i++
    } else if (negativeNumber.test(arg)) {
      args.push(`\u0000${hidden.length}`)
      hidden.push(arg)
    } else {
      args.push(arg)
    }
  }
  return {
    args,
    restore: (positional) =>
      positional.startsWith("\u0000") ? (hidden[Number(positional.slice(1))] ?? positional) : positional,
  }
}

/**
 * Parses `argv` against `specs`, turning unknown flags into a `UsageError` with a "did you mean"
 * suggestion and a missing value into a clear message.
 */
export const parseCommandLine = (
  command: string,
  argv: ReadonlyArray<string>,
  commandSpecs: Readonly<Record<string, FlagSpec>>,
): ParsedCommandLine | UsageError => {
  const specs = withConnectionFlags(commandSpecs)
  const options: Record<string, { type: "string" | "boolean"; multiple?: boolean; short?: string }> = {}
  for (const [name, spec] of Object.entries(specs)) {
    options[name] = {
      type: spec.type,
      ...(spec.multiple ? { multiple: true } : {}),
      ...(spec.short ? { short: spec.short } : {}),
    }
  }
  const { args, restore } = protectNegativeNumbers(argv, specs)
  try {
    const { values, positionals } = parseArgs({
      args,
      options,
      strict: true,
      allowPositionals: true,
    })
    return { flags: values as ParsedCommandLine["flags"], positionals: positionals.map(restore) }
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
    const ambiguous = /Option '(?:-\w, )?(--[\w-]+)' argument is ambiguous/.exec(message)
    if (ambiguous?.[1]) {
      return new UsageError({
        reason: `${ambiguous[1]} needs a value; to pass one that starts with "-", write ${ambiguous[1]}=VALUE (awa ${command} --help shows usage).`,
      })
    }
    return new UsageError({ reason: `${message} (awa ${command} --help shows usage).` })
  }
}

/** Formats flag specs as help lines. */
export const flagHelp = (specs: Readonly<Record<string, FlagSpec>>): string =>
  Object.entries(withConnectionFlags(specs))
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
