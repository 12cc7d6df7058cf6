import { type DatabaseUnreachable, type InvalidDatabaseUrl, MissingDatabaseUrl } from "@awa/model"
import { Config, Context, Effect, Layer, Option } from "effect"
import { type Database, openDatabase } from "./Database.js"

/** Where each database role lives: connection strings before any pool is opened. */
export interface TopologyConfig {
  /** The primary database (schema `awa`). Falls back to `DATABASE_URL` in `layerConfig`. */
  readonly databaseUrl: string
  /**
   * The database for the optional pgmq set. When unset, empty, or equal to `databaseUrl`, the pgmq
   * role uses the primary pool (single-database mode).
   */
  readonly pgmqDatabaseUrl?: string | undefined
}

/** True when the configuration puts the pgmq role on a database of its own (split mode). */
export const isSplit = (config: TopologyConfig): boolean =>
  config.pgmqDatabaseUrl !== undefined &&
  config.pgmqDatabaseUrl.trim() !== "" &&
  config.pgmqDatabaseUrl.trim() !== config.databaseUrl.trim()

/**
 * The topology service: the pools for the `primary` and `pgmq` roles. In single-database mode both
 * roles are the same `Database`, so single and split mode run the same code.
 */
export class Topology extends Context.Service<
  Topology,
  {
    readonly primary: Database
    readonly pgmq: Database
    readonly split: boolean
  }
>()("@awa/migrator/Topology") {
  /** Opens the pools described by `config` for the lifetime of the layer; fails if a server does not answer. */
  static readonly make = (
    config: TopologyConfig,
  ): Effect.Effect<
    Topology["Service"],
    DatabaseUnreachable | InvalidDatabaseUrl,
    import("effect").Scope.Scope
  > =>
    Effect.gen(function* () {
      const primary = yield* openDatabase("primary", config.databaseUrl.trim())
      const split = isSplit(config)
      const pgmq = split ? yield* openDatabase("pgmq", (config.pgmqDatabaseUrl ?? "").trim()) : primary
      return { primary, pgmq, split }
    })

  /** A layer from explicit connection strings. */
  static readonly layer = (
    config: TopologyConfig,
  ): Layer.Layer<Topology, DatabaseUnreachable | InvalidDatabaseUrl> =>
    Layer.effect(Topology, Topology.make(config))

  /** A layer from `DATABASE_URL` and `PGMQ_DATABASE_URL`; fails with `MissingDatabaseUrl` when the first is unset. */
  static readonly layerConfig: Layer.Layer<
    Topology,
    DatabaseUnreachable | InvalidDatabaseUrl | MissingDatabaseUrl
  > = Layer.effect(
    Topology,
    Effect.gen(function* () {
      const databaseUrl = yield* Config.option(Config.String("DATABASE_URL")).pipe(
        Effect.orElseSucceed(() => Option.none<string>()),
      )
      const pgmqDatabaseUrl = yield* Config.option(Config.String("PGMQ_DATABASE_URL")).pipe(
        Effect.orElseSucceed(() => Option.none<string>()),
      )
      if (Option.isNone(databaseUrl) || databaseUrl.value.trim() === "") {
        return yield* new MissingDatabaseUrl({ role: "primary", envVar: "DATABASE_URL" })
      }
      return yield* Topology.make({
        databaseUrl: databaseUrl.value,
        pgmqDatabaseUrl: Option.getOrUndefined(pgmqDatabaseUrl),
      })
    }),
  )
}
