/**
 * The `database-url` provider: an existing server named by `DATABASE_URL` (or an option), checked with
 * one query and never stopped by us.
 */
import type { PostgresServer } from "../PostgresServer.js"
import { PostgresServerError } from "../PostgresServerError.js"
import { withAdminSession } from "./AdminSession.js"
import { hostAndPort, isPostgresUrl, redactUrl } from "./ConnectionUrl.js"

/**
 * Checks that `url` answers and returns it as a server whose `stop()` does nothing (we did not start it).
 * Throws `InvalidDatabaseUrl` or `Unreachable` with a message naming the redacted URL.
 */
export const useDatabaseUrlServer = async (url: string): Promise<PostgresServer> => {
  if (!isPostgresUrl(url)) {
    throw new PostgresServerError({
      reason: "InvalidDatabaseUrl",
      message:
        `DATABASE_URL is not a postgres:// or postgresql:// URL: ${redactUrl(url)}. ` +
        "Set it to a URL such as postgres://user:password@127.0.0.1:5432/postgres, or unset it to use an " +
        "embedded server.",
    })
  }
  let version: string
  try {
    version = await withAdminSession(url, async (session) => {
      await session.query("SELECT 1")
      return session.serverVersion
    })
  } catch (cause) {
    throw new PostgresServerError({
      reason: "Unreachable",
      message:
        `The Postgres server at DATABASE_URL (${redactUrl(url)}) did not answer: ` +
        `${cause instanceof Error ? cause.message : String(cause)}. Start that server or fix the URL; ` +
        "unset DATABASE_URL (or set AWA_TEST_PROVIDER=embedded) to use an embedded server instead.",
      cause,
    })
  }
  return {
    provider: "database-url",
    adminUrl: url,
    describe: `DATABASE_URL (PostgreSQL ${version} at ${hostAndPort(url)})`,
    stop: async () => {},
  }
}
