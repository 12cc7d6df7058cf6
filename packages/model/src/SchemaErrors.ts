import { Data } from "effect"

/**
 * The grants a role running awa's producers and workers needs, as SQL with `<role>` for the role name
 * (docs/permissions.md explains each one).
 */
export const runtimeGrants: ReadonlyArray<string> = [
  "GRANT USAGE ON SCHEMA awa, awa_migrator TO <role>",
  "GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON ALL TABLES IN SCHEMA awa TO <role>",
  "GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA awa TO <role>",
  "GRANT SELECT ON awa_migrator.ledger TO <role>",
]

/**
 * The database has no usable awa schema: never migrated (`missing`), or migrated by an older awa than
 * this code needs (`outdated`). Raised up front by `Worker.start` and a producer's first use.
 */
export class AwaSchemaNotReady extends Data.TaggedError("AwaSchemaNotReady")<{
  readonly reason: "missing" | "outdated"
  /** What was found, e.g. "schema awa does not exist" or "canonical set at version 1, this code needs 2". */
  readonly detail: string
}> {
  override get message(): string {
    return this.reason === "missing"
      ? `The database has no awa schema (${this.detail}). Run \`awa migrate\` against it (or apply the SQL from \`awa migrate --sql\`) before starting producers and workers.`
      : `The database's awa schema is older than this code needs (${this.detail}). Run \`awa migrate\` against it to bring it up to date, then start again.`
  }
}

/**
 * The database role awa connects as lacks privileges on the awa schema. Names the role, what is missing,
 * and the grants a runtime role needs.
 */
export class AwaPrivilegesMissing extends Data.TaggedError("AwaPrivilegesMissing")<{
  /** The role connected (`current_user`), or "" when unknown. */
  readonly role: string
  /** What is missing, e.g. "USAGE on schema awa", "UPDATE on awa.jobs". */
  readonly missing: ReadonlyArray<string>
}> {
  override get message(): string {
    const role = this.role === "" ? "<role>" : `"${this.role.replaceAll('"', '""')}"`
    const grants = runtimeGrants.map((g) => `  ${g.replace("<role>", role)};`).join("\n")
    return `The database role ${this.role === "" ? "awa connects as" : role} lacks privileges awa needs: ${this.missing.join(", ")}. As the schema's owner (the role that ran \`awa migrate\`), grant:\n${grants}\n(see docs/permissions.md; \`awa migrate\` itself needs to own or create the schemas).`
  }
}
