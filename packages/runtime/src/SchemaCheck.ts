// The check producers and workers run before their first work, as the CLI does: is the awa schema
// installed, at least as new as this code, and usable by the connected role? Each answer is a typed error
// that says what to do (run `awa migrate`, or grant the runtime role its privileges).
import { getMigrationSet } from "@awa/migrator/MigrationSet"
import { AwaPrivilegesMissing, AwaSchemaNotReady } from "@awa/model/SchemaErrors"
import * as schemaSql from "./internal/sql/schema.js"
import { type Db, toExecutor } from "./PgExecutor.js"

/**
 * Checks that the database at `db` has the awa schema, migrated at least to the canonical version this
 * code knows, that the queue-storage set in `queueStorageSchema` (default `awa`), when installed there, is
 * at least as new as this code too, and that the connected role holds the runtime's privileges. Resolves
 * when all hold; rejects with `AwaSchemaNotReady` (run `awa migrate`), `AwaPrivilegesMissing` (names what
 * to grant), or `DatabaseError` / `ConnectionLost` when the database cannot answer. Reads catalogs and the
 * ledger only.
 */
export const checkSchema = async (db: Db, queueStorageSchema = "awa"): Promise<void> => {
  const executor = toExecutor(db, { preparedStatements: false })
  const [row] = await executor.query<{
    role: string
    has_awa: boolean
    has_ledger: boolean
    missing: Array<string>
  }>("check the awa schema", schemaSql.inspectSchema, [])
  if (row === undefined || !row.has_awa)
    throw new AwaSchemaNotReady({ reason: "missing", detail: "schema awa does not exist" })
  if (row.missing.length > 0) throw new AwaPrivilegesMissing({ role: row.role, missing: row.missing })
  if (!row.has_ledger)
    throw new AwaSchemaNotReady({
      reason: "missing",
      detail: "schema awa exists but the migration ledger awa_migrator.ledger does not",
    })
  const canonical = getMigrationSet("canonical")
  const [ledger] = await executor.query<{ version: number | null }>(
    "check the awa schema",
    schemaSql.ledgerVersion,
    [canonical.name, canonical.fixedInstance],
  )
  const applied = ledger?.version ?? null
  if (applied === null)
    throw new AwaSchemaNotReady({
      reason: "missing",
      detail: "the ledger records no canonical migration",
    })
  if (applied < canonical.latestVersion)
    throw new AwaSchemaNotReady({
      reason: "outdated",
      detail: `canonical set at version ${applied}, this code needs version ${canonical.latestVersion}`,
    })
  // Queue storage is optional (a database may run canonical only): only an installed set that is older than
  // this code is refused, before a claim or completion calls a function it does not have yet.
  const queueStorage = getMigrationSet("queue-storage")
  const [installed] = await executor.query<{ version: number | null }>(
    "check the awa schema",
    schemaSql.ledgerVersion,
    [queueStorage.name, queueStorageSchema],
  )
  const qsVersion = installed?.version ?? null
  if (qsVersion !== null && qsVersion < queueStorage.latestVersion)
    throw new AwaSchemaNotReady({
      reason: "outdated",
      detail: `queue-storage set in schema ${queueStorageSchema} at version ${qsVersion}, this code needs version ${queueStorage.latestVersion}`,
    })
}
