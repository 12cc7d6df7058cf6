/**
 * The `awa` binary's exit codes. Scripts can rely on them; they are listed in `awa --help` and the README.
 */
export const ExitCode = {
  /** The command did what was asked. */
  ok: 0,
  /** An unexpected internal error (a bug: please report it). */
  internal: 1,
  /** The command line is wrong: unknown command, flag or set name, a bad value, or conflicting flags. */
  usage: 2,
  /** No database URL was given, or the database could not be reached. */
  database: 3,
  /** Refused before changing anything: the database is ahead of the code, or an applied migration drifted. */
  refused: 4,
  /** A migration failed and was rolled back. */
  migrationFailed: 5,
  /** A destructive request was refused (for example `--reset` of a canonical schema); nothing changed. */
  unsafe: 6,
  /** The requested thing does not exist (for example a job id). */
  notFound: 7,
} as const

/** Maps an error's tag to the exit code that describes it. */
export const exitCodeFor = (error: unknown): number => {
  const tag = (error as { _tag?: unknown } | null)?._tag
  switch (tag) {
    case "UsageError":
    case "UnknownMigrationSet":
    case "InvalidIdentifier":
    case "InvalidMigratorOptions":
    case "InvalidDatabaseUrl":
    case "PgmqProviderUnavailable":
      return ExitCode.usage
    case "MissingDatabaseUrl":
    case "DatabaseUnreachable":
      return ExitCode.database
    case "DatabaseAheadOfCode":
    case "MigrationDrift":
      return ExitCode.refused
    case "MigrationFailed":
      return ExitCode.migrationFailed
    case "ResetRefused":
      return ExitCode.unsafe
    case "JobNotFound":
      return ExitCode.notFound
    default:
      return typeof tag === "string" && /Invalid|Unknown|Validation/.test(tag)
        ? ExitCode.usage
        : ExitCode.internal
  }
}

/** Help text for the exit codes. */
export const exitCodeHelp = `Exit codes:
  0  success
  1  internal error (a bug)
  2  usage error: unknown command, flag or set, bad value, conflicting flags
  3  no database URL, or the database is unreachable
  4  refused, nothing changed: database ahead of the code, or migration drift
  5  a migration failed and was rolled back
  6  unsafe request refused (e.g. --reset of a canonical schema), nothing changed
  7  not found`
