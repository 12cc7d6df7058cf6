/**
 * The Postgres server settings used for disposable test servers.
 */

/**
 * Settings for a disposable test server: durability off (a crash loses nothing a test cares about) and
 * enough connections for many concurrent pools across vitest workers.
 */
export const testServerSettings: Readonly<Record<string, string>> = {
  fsync: "off",
  synchronous_commit: "off",
  full_page_writes: "off",
  max_connections: "300",
}

/** Turns settings into `postgres -c name=value` arguments. */
export const settingsToFlags = (settings: Readonly<Record<string, string | number>>): string[] =>
  Object.entries(settings).flatMap(([name, value]) => ["-c", `${name}=${value}`])
