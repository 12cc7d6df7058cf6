import { makePgmqClient, type PgmqMessage, type PgmqQueueMetrics } from "@awa/pgmq/PgmqClient"
import { PgmqQueueNotFound } from "@awa/pgmq/PgmqErrors"
import { definePgmqQueue } from "@awa/pgmq/PgmqQueue"
import type { PgPool } from "@awa/runtime/PgExecutor"
import { Data, Schema } from "effect"
import type { FlagSpec, ParsedCommandLine } from "../CommandLine.js"
import { ExitCode } from "../ExitCode.js"
import { databaseUrlFlag, jsonFlag } from "../internal/CommonFlags.js"
import { checkDatabaseUrl, databaseUrlFrom, resolveDatabaseUrl, withPool } from "../internal/Database.js"
import { durationFlag, noExtraArguments, positiveIntFlag } from "../internal/FlagValues.js"
import { toJson } from "../internal/JobView.js"
import { runGroup, type Subcommand } from "../internal/Subcommands.js"
import { formatTable, type Output } from "../Output.js"
import { UsageError } from "../UsageError.js"

/** A purge or drop of a pgmq queue without `--yes`: refused before anything is touched. */
export class PgmqConfirmationRequired extends Data.TaggedError("PgmqConfirmationRequired")<{
  readonly command: "purge" | "drop"
  readonly queue: string
  readonly messages: number
}> {
  override get message(): string {
    const what =
      this.command === "purge"
        ? `delete all ${this.messages} message(s) of pgmq queue ${this.queue} (its archive is kept)`
        : `drop pgmq queue ${this.queue} with its ${this.messages} message(s) and its archive`
    return `Refusing to ${what} without confirmation; nothing was changed. Run it again with --yes (awa pgmq ${this.command} ${this.queue} --yes).`
  }
}

const pgmqUrlFlag: FlagSpec = {
  type: "string",
  description: "pgmq database (default: $PGMQ_DATABASE_URL, else the primary database)",
}

const connectionFlags = { "pgmq-database-url": pgmqUrlFlag, "database-url": databaseUrlFlag } as const

/**
 * The pgmq database the topology resolves: --pgmq-database-url, PGMQ_DATABASE_URL, else the primary's (and
 * then it is named as the primary when it cannot be reached).
 */
const resolvePgmqDatabase = (
  flags: ParsedCommandLine["flags"],
): { readonly url: string; readonly role: "pgmq" | "primary" } => {
  const found = databaseUrlFrom(
    { name: "pgmq-database-url", value: flags["pgmq-database-url"] },
    "PGMQ_DATABASE_URL",
  )
  return found === undefined
    ? { url: resolveDatabaseUrl(flags["database-url"]), role: "primary" }
    : { url: checkDatabaseUrl("pgmq", found.url, found.source), role: "pgmq" }
}

const withPgmq = <A>(flags: ParsedCommandLine["flags"], use: (pool: PgPool) => Promise<A>): Promise<A> => {
  const { url, role } = resolvePgmqDatabase(flags)
  return withPool(url, use, { role })
}

const client = makePgmqClient()

/** An untyped queue for the CLI: any JSON message. */
const queueArgument = (command: string, positionals: ReadonlyArray<string>, extra = 0) => {
  const [name, ...rest] = positionals
  if (name === undefined) throw new UsageError({ reason: `awa pgmq ${command} needs a queue name.` })
  noExtraArguments(`pgmq ${command}`, rest.slice(extra))
  return { queue: definePgmqQueue({ name, message: Schema.Unknown }), rest }
}

const age = (seconds: number | null): string => (seconds === null ? "-" : `${seconds}s`)

const metricsTable = (metrics: ReadonlyArray<PgmqQueueMetrics>): string =>
  formatTable(
    ["queue", "length", "visible", "oldest", "newest", "total_sent"],
    metrics.map((m) => [
      m.queue,
      String(m.length),
      m.visibleLength === null ? "-" : String(m.visibleLength),
      age(m.oldestAgeSeconds),
      age(m.newestAgeSeconds),
      String(m.totalMessages),
    ]),
  )

const queues: Subcommand = {
  usage: "[flags]",
  summary: "list the pgmq queues with their length",
  description: "Lists the queues of the pgmq database (PGMQ_DATABASE_URL, else DATABASE_URL), by name.",
  flags: { json: jsonFlag, ...connectionFlags },
  run: async (parsed, output) => {
    noExtraArguments("pgmq queues", parsed.positionals)
    const [list, metrics] = await withPgmq(parsed.flags, async (pool) => [
      await client.listQueues(pool),
      new Map((await client.metricsAll(pool)).map((m) => [m.queue, m])),
    ])
    const rows = list.map((q) => ({ ...q, length: metrics.get(q.queue)?.length ?? 0 }))
    if (parsed.flags.json) output.out(toJson(rows))
    else if (rows.length === 0) output.out("The pgmq database has no queues.")
    else
      output.out(
        formatTable(
          ["queue", "length", "created_at", "partitioned", "unlogged"],
          rows.map((q) => [
            q.queue,
            String(q.length),
            q.createdAt.toISOString(),
            q.partitioned ? "yes" : "no",
            q.unlogged ? "yes" : "no",
          ]),
        ),
      )
    return ExitCode.ok
  },
}

const metrics: Subcommand = {
  usage: "[QUEUE] [--json] [flags]",
  summary: "message counts and ages per queue (pgmq.metrics)",
  description: `Prints pgmq's metrics for every queue, or for QUEUE: messages in the queue, visible now, age of the
oldest and newest, and messages ever sent. Exits 7 when QUEUE does not exist.`,
  flags: { json: jsonFlag, ...connectionFlags },
  run: async (parsed, output) => {
    const [name, ...extra] = parsed.positionals
    noExtraArguments("pgmq metrics", extra)
    const result = await withPgmq(parsed.flags, async (pool) => {
      if (name === undefined) return client.metricsAll(pool)
      const queue = definePgmqQueue({ name, message: Schema.Unknown })
      await requireQueue(pool, queue.name, "metrics")
      return [await client.metrics(pool, queue)]
    })
    if (parsed.flags.json) output.out(toJson(name === undefined ? result : result[0]))
    else output.out(result.length === 0 ? "The pgmq database has no queues." : metricsTable(result))
    return ExitCode.ok
  },
}

/** Fails with `PgmqQueueNotFound` (exit 7) when the queue does not exist. */
const requireQueue = async (pool: PgPool, name: string, operation: string): Promise<void> => {
  if (!(await client.queueExists(pool, name))) {
    throw new PgmqQueueNotFound({ queue: name, operation })
  }
}

const jsonObject = (flag: string, text: string): unknown => {
  try {
    return JSON.parse(text)
  } catch (error) {
    throw new UsageError({
      reason: `${flag} must be JSON, got ${JSON.stringify(text)}: ${(error as Error).message}.`,
    })
  }
}

const send: Subcommand = {
  usage: "QUEUE MESSAGE_JSON [--headers JSON] [--delay D] [--no-notify] [flags]",
  summary: "send one message (with awa's notification unless --no-notify)",
  description: `Sends MESSAGE_JSON (any JSON value, usually an object) to QUEUE and prints its id. By default it goes
through awa_pgmq.send_notify, which also notifies listeners on awa_pgmq and awa_pgmq:<namespace>;
--no-notify sends with plain pgmq.send. --delay keeps it invisible (10s, 2m, 1h, or seconds; rounded up to
whole seconds). Exits 7 when QUEUE does not exist.`,
  flags: {
    headers: { type: "string", description: "headers as a JSON object" },
    delay: { type: "string", description: "visible after this long (default 0)" },
    "no-notify": { type: "boolean", description: "send with plain pgmq.send, without awa's notification" },
    json: jsonFlag,
    ...connectionFlags,
  },
  run: async (parsed, output) => {
    const { queue, rest } = queueArgument("send", parsed.positionals, 1)
    const [text] = rest
    if (text === undefined)
      throw new UsageError({ reason: "awa pgmq send needs the message as JSON after the queue name." })
    const message = jsonObject("MESSAGE_JSON", text)
    const headers =
      parsed.flags.headers === undefined ? undefined : jsonObject("--headers", String(parsed.flags.headers))
    if (
      headers !== undefined &&
      (headers === null || typeof headers !== "object" || Array.isArray(headers))
    ) {
      throw new UsageError({ reason: '--headers must be a JSON object, e.g. \'{"trace":"abc"}\'.' })
    }
    const delayMs = durationFlag("delay", parsed.flags.delay)
    const id = await withPgmq(parsed.flags, async (pool) => {
      await requireQueue(pool, queue.name, "send")
      return client.send(pool, queue, message, {
        ...(headers === undefined ? {} : { headers: headers as Record<string, unknown> }),
        ...(delayMs === undefined ? {} : { delay: delayMs }),
        notify: parsed.flags["no-notify"] !== true,
      })
    })
    output.out(
      parsed.flags.json ? toJson({ queue: queue.name, msgId: id }) : `Sent message ${id} to ${queue.name}.`,
    )
    return ExitCode.ok
  },
}

const messageJson = (m: PgmqMessage<unknown>) => ({
  msgId: m.msgId,
  readCount: m.readCount,
  enqueuedAt: m.enqueuedAt,
  visibleAt: m.visibleAt,
  message: m.message,
  headers: m.headers,
})

const read: Subcommand = {
  usage: "QUEUE [--limit N] [--vt D] [flags]",
  summary: "read messages (visible to others again at once unless --vt)",
  description: `Reads up to --limit (default 10) visible messages of QUEUE with pgmq.read and prints them. Reading
counts as a read (read_ct goes up). With --vt (10s, 2m, ...) the messages stay hidden from other readers for
that long, as a consumer's read would; the default 0 leaves them visible. Exits 7 when QUEUE does not exist.`,
  flags: {
    limit: { type: "string", description: "most messages, 1..1000 (default 10)" },
    vt: { type: "string", description: "hide the messages read for this long (default 0)" },
    json: jsonFlag,
    ...connectionFlags,
  },
  run: async (parsed, output) => {
    const { queue } = queueArgument("read", parsed.positionals)
    const limit = positiveIntFlag("limit", parsed.flags.limit, 1000) ?? 10
    const vtMs = durationFlag("vt", parsed.flags.vt) ?? 0
    const messages = await withPgmq(parsed.flags, async (pool) => {
      await requireQueue(pool, queue.name, "read")
      return client.read(pool, queue, { limit, visibilityTimeout: vtMs })
    })
    if (parsed.flags.json) output.out(toJson(messages.map(messageJson)))
    else if (messages.length === 0) output.out(`No visible messages in ${queue.name}.`)
    else
      output.out(
        formatTable(
          ["msg_id", "read_ct", "enqueued_at", "message", "headers"],
          messages.map((m) => [
            m.msgId,
            String(m.readCount),
            m.enqueuedAt.toISOString(),
            JSON.stringify(m.message),
            m.headers === null ? "" : JSON.stringify(m.headers),
          ]),
        ),
      )
    return ExitCode.ok
  },
}

const destructive = (command: "purge" | "drop"): Subcommand => ({
  usage: "QUEUE --yes [flags]",
  summary:
    command === "purge"
      ? "delete every message of a queue (needs --yes)"
      : "drop a queue and its archive (needs --yes)",
  description:
    command === "purge"
      ? `Deletes every message of QUEUE (pgmq.purge_queue); its archive is kept. Without --yes the command is refused
(exit 6) and says how many messages it would delete. Exits 7 when QUEUE does not exist.`
      : `Drops QUEUE with its messages and its archive (pgmq.drop_queue). Without --yes the command is refused
(exit 6) and says how many messages it would lose. Exits 7 when QUEUE does not exist.`,
  flags: {
    yes: { type: "boolean", description: `confirm: really ${command} the queue` },
    json: jsonFlag,
    ...connectionFlags,
  },
  run: async (parsed, output) => {
    const { queue } = queueArgument(command, parsed.positionals)
    const result = await withPgmq(parsed.flags, async (pool) => {
      await requireQueue(pool, queue.name, command)
      if (parsed.flags.yes !== true) {
        const { length } = await client.metrics(pool, queue)
        throw new PgmqConfirmationRequired({ command, queue: queue.name, messages: length })
      }
      return command === "purge" ? client.purgeQueue(pool, queue) : client.dropQueue(pool, queue)
    })
    if (command === "purge") {
      output.out(
        parsed.flags.json
          ? toJson({ queue: queue.name, purged: result })
          : `Purged ${result} message(s) from ${queue.name}.`,
      )
    } else {
      output.out(
        parsed.flags.json
          ? toJson({ queue: queue.name, dropped: result })
          : `Dropped pgmq queue ${queue.name}.`,
      )
    }
    return ExitCode.ok
  },
})

/** What `awa pgmq` does. */
export const pgmqDescription =
  "pgmq queues on the pgmq database (PGMQ_DATABASE_URL, else DATABASE_URL): list, metrics, send, read, purge, drop."

/** Runs `awa pgmq <queues|metrics|send|read|purge|drop>`; returns the exit code. */
export const runPgmq = (argv: ReadonlyArray<string>, output: Output): Promise<number> =>
  runGroup(
    "pgmq",
    pgmqDescription,
    { queues, metrics, send, read, purge: destructive("purge"), drop: destructive("drop") },
    argv,
    output,
  )
