/**
 * Postgres connection URLs: pointing an admin URL at another database on the same server, and showing
 * a URL without its password.
 */

const parse = (url: string): URL | undefined => {
  try {
    const parsed = new URL(url)
    return parsed.protocol === "postgres:" || parsed.protocol === "postgresql:" ? parsed : undefined
  } catch {
    return undefined
  }
}

/** Whether `url` is a `postgres://` or `postgresql://` URL. */
export const isPostgresUrl = (url: string): boolean => parse(url) !== undefined

/**
 * Returns `url` with its database replaced by `database`, keeping credentials, host, port and query
 * parameters. `database` must already be validated; it is percent-encoded anyway.
 */
export const urlForDatabase = (url: string, database: string): string => {
  const parsed = parse(url)
  if (parsed === undefined) throw new TypeError(`not a postgres:// URL: ${redactUrl(url)}`)
  parsed.pathname = `/${encodeURIComponent(database)}`
  return parsed.toString()
}

/** The database a URL names (its path), or `undefined` when it names none. */
export const databaseOfUrl = (url: string): string | undefined => {
  const parsed = parse(url)
  if (parsed === undefined) return undefined
  const name = decodeURIComponent(parsed.pathname.replace(/^\//, ""))
  return name === "" ? undefined : name
}

/** `host:port` of a URL, for messages. */
export const hostAndPort = (url: string): string => {
  const parsed = parse(url)
  if (parsed === undefined) return "?"
  return `${parsed.hostname || "localhost"}:${parsed.port || "5432"}`
}

/** Shows a connection URL with its password replaced by `***`, safe to print. */
export const redactUrl = (url: string): string => {
  const parsed = parse(url)
  if (parsed === undefined) return url.replace(/:[^:@/]*@/, ":***@")
  if (parsed.password !== "") parsed.password = "***"
  return parsed.toString()
}
