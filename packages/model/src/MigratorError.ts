import { Data } from "effect"

/**
 * A database role in a topology: `primary` holds schema `awa`; `pgmq` holds the optional pgmq set
 * (the same database as `primary` unless `PGMQ_DATABASE_URL` names another).
 */
export type DatabaseRole = "primary" | "pgmq"

/** A required connection string was not given (neither as an option nor through its environment variable). */
export class MissingDatabaseUrl extends Data.TaggedError("MissingDatabaseUrl")<{
  readonly role: DatabaseRole
  readonly envVar: string
}> {
  override get message(): string {
    return `No database URL for role "${this.role}". Pass --database-url (or the option \`databaseUrl\`) or set ${this.envVar}.`
  }
}

/** A database could not be reached or refused the connection. */
export class DatabaseUnreachable extends Data.TaggedError("DatabaseUnreachable")<{
  readonly role: DatabaseRole
  readonly target: string
  readonly reason: string
}> {
  override get message(): string {
    // The pgmq database is consulted even without --with-pgmq (an installed pgmq set stays covered), so a
    // stale PGMQ_DATABASE_URL is worth naming as the way out.
    const pgmq =
      this.role === "pgmq"
        ? " It is set as the pgmq database (PGMQ_DATABASE_URL or --pgmq-database-url), which migrate and status check for an installed pgmq set; unset it if pgmq is not used."
        : ""
    return `Cannot connect to the ${this.role} database at ${this.target}: ${this.reason}. Check that the server is running and the URL (host, port, user, password, database) is right.${pgmq}`
  }
}

/** A connection string could not be parsed. */
export class InvalidDatabaseUrl extends Data.TaggedError("InvalidDatabaseUrl")<{
  readonly role: DatabaseRole
  readonly reason: string
}> {
  override get message(): string {
    return `The ${this.role} database URL is not valid: ${this.reason}. Expected postgres://user:password@host:port/database.`
  }
}

/** A migration set name that no bundled set has. */
export class UnknownMigrationSet extends Data.TaggedError("UnknownMigrationSet")<{
  readonly name: string
  readonly known: ReadonlyArray<string>
  readonly suggestion: string | undefined
}> {
  override get message(): string {
    const hint = this.suggestion ? ` Did you mean "${this.suggestion}"?` : ""
    return `Unknown migration set "${this.name}".${hint} Known sets: ${this.known.join(", ")}.`
  }
}

/** A Postgres identifier (such as a queue-storage schema name) that awa will not use. */
export class InvalidIdentifier extends Data.TaggedError("InvalidIdentifier")<{
  readonly kind: string
  readonly value: string
  readonly reason: string
}> {
  override get message(): string {
    return `Invalid ${this.kind} ${JSON.stringify(this.value)}: ${this.reason}. Use 1 to 63 characters of lower-case letters, digits and underscores, starting with a letter or underscore.`
  }
}

/** Options that cannot be used together, or an option value that is not allowed. */
export class InvalidMigratorOptions extends Data.TaggedError("InvalidMigratorOptions")<{
  readonly reason: string
}> {
  override get message(): string {
    return this.reason
  }
}

/** The database has a migration newer than this code knows: the code is older than the schema. */
export class DatabaseAheadOfCode extends Data.TaggedError("DatabaseAheadOfCode")<{
  readonly role: DatabaseRole
  readonly set: string
  readonly instance: string
  readonly databaseVersion: number
  readonly codeVersion: number
}> {
  override get message(): string {
    return `The ${this.role} database has ${this.set}/${this.instance} at version ${this.databaseVersion}, but this code only knows up to version ${this.codeVersion}. Upgrade awa to a release that includes version ${this.databaseVersion}; nothing was changed.`
  }
}

/** An applied migration whose SQL differs from the bundled file (it was edited after it was applied). */
export class MigrationDrift extends Data.TaggedError("MigrationDrift")<{
  readonly role: DatabaseRole
  readonly set: string
  readonly instance: string
  readonly version: number
  readonly name: string
  readonly appliedChecksum: string
  readonly codeChecksum: string
}> {
  override get message(): string {
    return `Migration drift: ${this.set}/${this.instance} version ${this.version} (${this.name}) was applied to the ${this.role} database with checksum ${this.appliedChecksum.slice(0, 12)}, but the bundled SQL now has checksum ${this.codeChecksum.slice(0, 12)}. Applied migrations must never be edited: restore the original file or add a new migration; nothing was changed.`
  }
}

/** A migration failed; its transaction (objects and ledger row) was rolled back. */
export class MigrationFailed extends Data.TaggedError("MigrationFailed")<{
  readonly role: DatabaseRole
  readonly set: string
  readonly instance: string
  readonly file: string
  readonly reason: string
  readonly sqlState: string | undefined
}> {
  override get message(): string {
    const code = this.sqlState ? ` [SQLSTATE ${this.sqlState}]` : ""
    return `Migration ${this.set}/${this.file} (instance ${this.instance}) failed on the ${this.role} database and was rolled back: ${this.reason}${code}. Fix the cause and run migrate again.`
  }
}

/**
 * A `--reset` of a schema that awa will not drop: schema `awa`, a schema holding canonical tables, one awa
 * did not prepare, one holding relations awa did not create, or one whose drop would reach objects outside it.
 */
export class ResetRefused extends Data.TaggedError("ResetRefused")<{
  readonly schema: string
  readonly reason: string
}> {
  override get message(): string {
    return `Refusing to reset schema "${this.schema}": ${this.reason}. Nothing was changed. Reset only drops custom queue-storage schemas that awa prepared.`
  }
}

/**
 * A numeric template parameter of a migration set (such as the queue-storage ring sizes) that is not an
 * integer inside the range the set supports.
 */
export class InvalidTemplateParameter extends Data.TaggedError("InvalidTemplateParameter")<{
  readonly set: string
  readonly param: string
  /** The option that sets it (`--queue-ring-slots` / `queueRingSlots`), for the message. */
  readonly option: string
  readonly value: string
  readonly min: number
  readonly max: number
  readonly reason: string
}> {
  override get message(): string {
    return `Invalid ${this.param} ${JSON.stringify(this.value)} for the ${this.set} set: ${this.reason}. Give ${this.option} a whole number from ${this.min} to ${this.max}; nothing was changed.`
  }
}

/**
 * A set instance is already installed with other template parameters than the ones asked for (for example a
 * queue-storage schema installed with 16 queue-ring slots, migrated again with 4). Install-time parameters are
 * fixed: the instance keeps the values it was installed with.
 */
export class InstalledParametersDiffer extends Data.TaggedError("InstalledParametersDiffer")<{
  readonly role: DatabaseRole
  readonly set: string
  readonly instance: string
  /** The values the ledger records for the instance, for every parameter that differs. */
  readonly installed: Readonly<Record<string, string>>
  /** The values this run asked for. */
  readonly requested: Readonly<Record<string, string>>
}> {
  override get message(): string {
    const list = (values: Readonly<Record<string, string>>) =>
      Object.entries(values)
        .map(([k, v]) => `${k}=${v}`)
        .join(", ")
    const reset =
      this.instance === "awa"
        ? "schema awa cannot be re-created by awa; to use other sizes, prepare a custom schema with them (awa storage prepare-queue-storage-schema --schema NAME)"
        : `to change them, re-create the schema with the new values (awa storage prepare-queue-storage-schema --schema ${this.instance} --reset, which drops its jobs) or prepare another schema`
    return `${this.set}/${this.instance} on the ${this.role} database was installed with ${list(this.installed)}, but this run asks for ${list(this.requested)}. These parameters are fixed when a schema is installed and nothing was changed: run again without them (or with the installed values) to upgrade the schema as it is; ${reset}.`
  }
}

/** The requested pgmq provider cannot be used on the target database. */
export class PgmqProviderUnavailable extends Data.TaggedError("PgmqProviderUnavailable")<{
  readonly provider: string
  readonly reason: string
}> {
  override get message(): string {
    return `The pgmq provider "${this.provider}" cannot be used: ${this.reason}.`
  }
}

/** Any error the migrator can fail with. */
export type MigratorError =
  | MissingDatabaseUrl
  | DatabaseUnreachable
  | InvalidDatabaseUrl
  | UnknownMigrationSet
  | InvalidIdentifier
  | InvalidMigratorOptions
  | DatabaseAheadOfCode
  | MigrationDrift
  | MigrationFailed
  | ResetRefused
  | PgmqProviderUnavailable
  | InvalidTemplateParameter
  | InstalledParametersDiffer
