import { Data } from "effect"

/**
 * How clients reach Postgres: `"none"` (directly) or `"session"` (a pooler that gives each client one
 * server connection for its whole session) keep every feature; `"transaction"` (a transaction-pooling
 * PgBouncer, where consecutive transactions may run on different server connections) turns off
 * everything that needs session state: named prepared statements and LISTEN (workers poll instead, more
 * often by default). Leader election needs no session state in any mode (it is a lease row).
 */
export type PoolerMode = "none" | "session" | "transaction"

/** The accepted pooler modes, in help order. */
export const poolerModes: ReadonlyArray<PoolerMode> = ["none", "session", "transaction"]

/** The environment variable the CLI reads the pooler mode from when `--pooler` is not given. */
export const poolerEnvVar = "AWA_POOLER"

/** A pooler mode that is none of `none`, `session`, `transaction`. */
export class InvalidPoolerMode extends Data.TaggedError("InvalidPoolerMode")<{
  readonly value: string
  readonly source: string
}> {
  override get message(): string {
    return `Unknown pooler mode ${JSON.stringify(this.value)} (from ${this.source}). Use "transaction" behind a transaction-pooling PgBouncer, or "session" / "none" for a session pooler or a direct connection.`
  }
}

/**
 * A setting that needs session state was asked for together with `pooler: "transaction"`, where it cannot
 * work (it would fail at random or silently): names the setting and what to set instead.
 */
export class PoolerConflict extends Data.TaggedError("PoolerConflict")<{
  readonly setting: string
  readonly reason: string
  readonly fix: string
}> {
  override get message(): string {
    return `${this.setting} cannot be used with pooler "transaction": ${this.reason}. ${this.fix}`
  }
}

/**
 * Reads a pooler mode from text (case-insensitive, trimmed); `source` names where it came from (a flag, an
 * environment variable, an option) for the error. Empty or undefined text is `undefined` (not set).
 */
export const parsePoolerMode = (
  value: unknown,
  source: string,
): PoolerMode | InvalidPoolerMode | undefined => {
  if (value === undefined || value === null) return undefined
  const text = String(value).trim().toLowerCase()
  if (text === "") return undefined
  return (poolerModes as ReadonlyArray<string>).includes(text)
    ? (text as PoolerMode)
    : new InvalidPoolerMode({ value: String(value), source })
}

/** True when the mode forbids session state (named prepared statements, LISTEN, session advisory locks). */
export const isTransactionPooler = (mode: PoolerMode | undefined): boolean => mode === "transaction"

/**
 * Checks a `pooler` option given in code: undefined stays undefined, a valid mode is returned, anything
 * else throws `InvalidPoolerMode` naming `source` (e.g. "makeProducer option pooler").
 */
export const checkPoolerOption = (value: unknown, source: string): PoolerMode | undefined => {
  if (value === undefined) return undefined
  const mode = typeof value === "string" && value.trim() !== "" ? parsePoolerMode(value, source) : undefined
  if (mode === undefined) throw new InvalidPoolerMode({ value: String(value), source })
  if (mode instanceof InvalidPoolerMode) throw mode
  return mode
}
