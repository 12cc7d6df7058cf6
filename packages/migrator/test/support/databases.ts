// Fresh, empty databases for migrator tests: each call gets its own, dropped when the test finishes.

import type { TestDatabases, TestDbMode } from "@awa/testing-src/TestDatabases.js"
import { createEmptyDatabases } from "@awa/testing-src/vitest/TestPostgres.js"
import { onTestFinished } from "vitest"

export const freshDatabases = async (mode: TestDbMode): Promise<TestDatabases> => {
  const databases = await createEmptyDatabases(mode)
  onTestFinished(() => databases.drop())
  return databases
}
