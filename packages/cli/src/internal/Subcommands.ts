// Command groups such as `awa job <list|get|retry|cancel>`: dispatch to the subcommand, parse its flags
// (with "did you mean" for typos) and print per-subcommand help.
import { type FlagSpec, flagHelp, type ParsedCommandLine, parseCommandLine } from "../CommandLine.js"
import { ExitCode } from "../ExitCode.js"
import type { Output } from "../Output.js"
import { UsageError, unknownWord } from "../UsageError.js"

/** One subcommand of a group. */
export interface Subcommand {
  /** Arguments after the subcommand's name in the usage line, e.g. `ID [flags]`. */
  readonly usage: string
  /** One line for the group's help. */
  readonly summary: string
  /** What it does, for its own help. */
  readonly description: string
  /** Its flags (`--help` is added). */
  readonly flags: Readonly<Record<string, FlagSpec>>
  /** Runs it with the parsed command line; returns the exit code. */
  readonly run: (parsed: ParsedCommandLine, output: Output) => Promise<number>
}

const helpFlag: FlagSpec = { type: "boolean", short: "h", description: "show this help" }

/** The help text of one subcommand. */
export const subcommandHelp = (group: string, name: string, sub: Subcommand): string =>
  `Usage: awa ${group} ${name} ${sub.usage}

${sub.description}

Flags:
${flagHelp({ ...sub.flags, help: helpFlag })}`

/** The help text of a group. */
export const groupHelp = (
  group: string,
  description: string,
  subs: Readonly<Record<string, Subcommand>>,
): string => {
  const width = Math.max(...Object.keys(subs).map((n) => n.length)) + 2
  return `Usage: awa ${group} <${Object.keys(subs).join("|")}> [flags]

${description}

Commands:
${Object.entries(subs)
  .map(([name, sub]) => `  ${name.padEnd(width)}${sub.summary}`)
  .join("\n")}

Run \`awa ${group} <command> --help\` for a command's flags.`
}

/** Runs `awa <group> <sub> ...`: help, unknown subcommands and flag parsing included. */
export const runGroup = async (
  group: string,
  description: string,
  subs: Readonly<Record<string, Subcommand>>,
  argv: ReadonlyArray<string>,
  output: Output,
): Promise<number> => {
  const [name, ...rest] = argv
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    output.out(groupHelp(group, description, subs))
    return name === undefined ? ExitCode.usage : ExitCode.ok
  }
  const sub = subs[name]
  if (sub === undefined) throw unknownWord(`${group} command`, name, Object.keys(subs))
  const parsed = parseCommandLine(`${group} ${name}`, rest, { ...sub.flags, help: helpFlag })
  if (parsed instanceof UsageError) throw parsed
  if (parsed.flags.help) {
    output.out(subcommandHelp(group, name, sub))
    return ExitCode.ok
  }
  return sub.run(parsed, output)
}
