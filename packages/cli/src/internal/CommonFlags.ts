// Flags that many commands share, so they read the same everywhere.
import type { FlagSpec } from "../CommandLine.js"

/** `--database-url`: the primary database (default `DATABASE_URL`). */
export const databaseUrlFlag: FlagSpec = {
  type: "string",
  description: "primary database (default: $DATABASE_URL)",
}

/** `--json`: print the command's data as JSON instead of a table. */
export const jsonFlag: FlagSpec = { type: "boolean", description: "print the result as JSON" }
