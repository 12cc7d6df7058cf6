// Flags that many commands share, so they read the same everywhere.
import type { FlagSpec } from "../CommandLine.js"

/** `--database-url`: the primary database (default `DATABASE_URL`). */
export const databaseUrlFlag: FlagSpec = {
  type: "string",
  description: "primary database (default: $DATABASE_URL)",
}

/**
 * `--pooler`: the pooler in front of the database (default `AWA_POOLER`, else none). Every command that
 * takes `--database-url` takes it too (`parseCommandLine` adds it), so it reads the same everywhere.
 */
export const poolerFlag: FlagSpec = {
  type: "string",
  description:
    "transaction behind a transaction-pooling PgBouncer, else session | none (default: $AWA_POOLER)",
}

/** `--json`: print the command's data as JSON instead of a table. */
export const jsonFlag: FlagSpec = { type: "boolean", description: "print the result as JSON" }

/** `--limit`, `--cursor` and `--json` of the keyset-paginated list commands. */
export const pageFlags: Readonly<Record<"limit" | "cursor" | "json", FlagSpec>> = {
  limit: { type: "string", description: "rows per page, 1..10000 (default 50)" },
  cursor: { type: "string", description: "the next-page cursor printed by the previous page" },
  json: { type: "boolean", description: "print {items, nextCursor} as JSON" },
}
