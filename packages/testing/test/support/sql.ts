/**
 * Direct SQL for tests: one short-lived connection per call, so tests can look at databases the code
 * under test made without going through that code.
 */
import net from "node:net"
import pg from "pg"

/** Runs one statement on `url` and returns its rows. */
export const queryOnce = async <R extends Record<string, unknown> = Record<string, unknown>>(
  url: string,
  text: string,
  params: ReadonlyArray<unknown> = [],
): Promise<R[]> => {
  const client = new pg.Client({ connectionString: url })
  client.on("error", () => {})
  await client.connect()
  try {
    return (await client.query<R>(text, [...params])).rows
  } finally {
    await client.end()
  }
}

/** Whether a database of that name exists on the server behind `adminUrl`. */
export const databaseExists = async (adminUrl: string, name: string): Promise<boolean> =>
  (await queryOnce(adminUrl, "SELECT 1 FROM pg_database WHERE datname = $1", [name])).length === 1

/** The name of the database a URL connects to, as the server reports it. */
export const currentDatabase = async (url: string): Promise<string> =>
  String((await queryOnce<{ name: string }>(url, "SELECT current_database() AS name"))[0]?.name)

/** Resolves with the error code of a TCP connection to host:port (e.g. ECONNREFUSED), or "connected". */
export const tcpProbe = (host: string, port: number): Promise<string> =>
  new Promise((resolve) => {
    const socket = net.connect({ host, port })
    socket.once("connect", () => {
      socket.destroy()
      resolve("connected")
    })
    socket.once("error", (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message))
  })
