// The primary and pgmq databases of a test file, migrated with the pgmq set, in single or split mode, with a
// pool on each (the same pool twice in single mode, as the topology gives).
import type { TestDbMode } from "@awa/testing/TestDatabases"
import { useAwaDatabase } from "@awa/testing/vitest/AwaTestDatabase"
import pg from "pg"
import { afterAll, beforeAll } from "vitest"

/** The databases of a test file. */
export interface PgmqDatabases {
  readonly mode: TestDbMode
  readonly primaryUrl: string
  readonly pgmqUrl: string
  /** A pool on the primary database. */
  readonly primary: pg.Pool
  /** A pool on the pgmq database (the primary pool in single mode). */
  readonly pgmq: pg.Pool
}

/** Registers hooks giving the file migrated databases in `mode`; read the result inside tests. */
export const usePgmqDatabases = (mode: TestDbMode): PgmqDatabases => {
  // The bridge writes jobs with the default producer (the canonical engine), in this process and in its
  // child processes alike, so the databases are made for that engine whatever AWA_TEST_ENGINE says.
  const awa = useAwaDatabase({ mode, withPgmq: true, engine: "canonical" })
  let pgmqPool: pg.Pool | undefined
  beforeAll(() => {
    if (mode === "split") {
      pgmqPool = new pg.Pool({ connectionString: awa.pgmqUrl, max: 10 })
      pgmqPool.on("error", () => {})
    }
  })
  afterAll(async () => {
    await pgmqPool?.end()
  })
  return {
    mode,
    get primaryUrl() {
      return awa.primaryUrl
    },
    get pgmqUrl() {
      return awa.pgmqUrl
    },
    get primary() {
      return awa.pool
    },
    get pgmq() {
      return pgmqPool ?? awa.pool
    },
  }
}

let counter = 0
/** A fresh queue name for one test (mixed case and a hyphen when `mixed`, as pgmq allows). */
export const queueName = (prefix: string): string => `${prefix}_${process.pid}_${++counter}`
