/**
 * The `awa` binary's exit codes. Scripts can rely on them; they are listed in `awa --help` and the README.
 */
export const ExitCode = {
  /** The command did what was asked. */
  ok: 0,
  /** An unexpected internal error (a bug: please report it). */
  internal: 1,
  /**
   * The command line is wrong: unknown command, flag or set name, a bad value, or conflicting flags; also no
   * command at all (the help is printed).
   */
  usage: 2,
  /**
   * No database URL was given, the database could not be reached or refused the connection (host, port, TLS,
   * authentication, database name), the connection was lost, it has no (or an outdated) awa schema (run
   * `awa migrate`), or the role lacks the grants awa needs.
   */
  database: 3,
  /**
   * Refused before changing anything: the database is ahead of the code, an applied migration drifted, or a
   * schema is already installed with other ring sizes than the ones asked for.
   */
  refused: 4,
  /** A migration failed and was rolled back. */
  migrationFailed: 5,
  /**
   * A destructive request was refused (for example `--reset` of a canonical schema, or a bulk DLQ retry or
   * purge without a filter or `--all`, or `awa pgmq purge|drop` without `--yes`), or a storage transition was refused by its gate; nothing
   * changed.
   */
  unsafe: 6,
  /** The requested thing does not exist (for example a job id, or a pgmq queue). */
  notFound: 7,
  /**
   * The job's state does not allow the operation (for example cancelling a completed job), or a unique key
   * it needs is held by another job; nothing changed.
   */
  conflict: 8,
  /** Interrupted (Ctrl-C) before finishing; `awa worker` exits 0 instead after a graceful shutdown. */
  interrupted: 130,
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
    case "PoolerConflict":
    case "EngineContradictsStorageState":
      return ExitCode.usage
    case "MissingDatabaseUrl":
    case "DatabaseUnreachable":
    case "AwaSchemaMissing":
    case "PgmqNotInstalled":
    case "AwaSchemaNotReady":
    case "AwaPrivilegesMissing":
    case "ConnectionLost":
    case "QueueStorageSchemaMissing":
      return ExitCode.database
    case "DatabaseAheadOfCode":
    case "MigrationDrift":
    case "InstalledParametersDiffer":
      return ExitCode.refused
    case "MigrationFailed":
      return ExitCode.migrationFailed
    case "ResetRefused":
    case "FilterRequired":
    case "DlqTargetRequired":
    case "PgmqConfirmationRequired":
    case "StorageGateRefused":
      return ExitCode.unsafe
    case "JobNotFound":
    case "JobIsDeadLettered":
    case "JobNotDeadLettered":
    case "PgmqQueueNotFound":
      return ExitCode.notFound
    case "JobStateConflict":
    case "UniqueKeyHeld":
      return ExitCode.conflict
    case "TasksModuleError":
      return ExitCode.usage
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
  2  usage error: unknown command, flag or set, bad value, conflicting flags, or no command (help printed)
  3  no database URL, the database is unreachable, refuses the connection or lost it, has no (or an outdated)
     awa schema (run awa migrate), or the role lacks the grants awa needs (docs/permissions.md)
  4  refused, nothing changed: database ahead of the code, migration drift, or other ring sizes than installed
  5  a migration failed and was rolled back
  6  unsafe request refused (e.g. --reset of a canonical schema, dlq purge without a filter, pgmq purge without --yes), nothing changed
  7  not found (e.g. a job id, a pgmq queue)
  8  conflict: the job's state does not allow the operation, or its unique key is held; nothing changed
  130  interrupted (Ctrl-C) before finishing`
