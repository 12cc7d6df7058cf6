import { toDatabaseError } from "@awa/runtime/DatabaseError"
import type { PgPool } from "@awa/runtime/PgExecutor"
import { Duration, Option } from "effect"
import { Listener } from "./internal/Listener.js"
import { toCount, toSeconds } from "./internal/Seconds.js"
import { parseAwaSentEvent, sendChannelsFor } from "./PgmqChannels.js"
import { makePgmqClient, type PgmqClient, type PgmqMessage } from "./PgmqClient.js"
import { InvalidPgmqMessage, InvalidPgmqOptions } from "./PgmqErrors.js"
import type { AnyPgmqQueue, PgmqMessageOf } from "./PgmqQueue.js"

/** What a consumer's handler receives besides the message. */
export interface ConsumerContext {
  /** Fires when the consumer stops and its stop timeout passes while the handler still runs. */
  readonly signal: AbortSignal
}

/** What a consumer does with a message its handler finished: delete it, or keep it in the archive table. */
export type SuccessAction = "delete" | "archive"

/** An event of a consumer, for logs and tests. */
export type ConsumerEvent =
  | { readonly type: "listening"; readonly channels: ReadonlyArray<string> }
  | { readonly type: "woken"; readonly channel: string }
  | { readonly type: "completed"; readonly msgId: string; readonly action: SuccessAction }
  | { readonly type: "failed"; readonly msgId: string; readonly readCount: number; readonly error: unknown }
  | { readonly type: "gave-up"; readonly msgId: string; readonly readCount: number }
  | { readonly type: "invalid"; readonly msgId: string; readonly issue: string }
  | { readonly type: "error"; readonly context: string; readonly error: unknown }

/** Options of `PgmqConsumer.start`. */
export interface PgmqConsumerOptions<Q extends AnyPgmqQueue> {
  /** A pool on the pgmq database. LISTEN uses one extra connection with the same settings. */
  readonly pool: PgPool
  /** The queue to consume. */
  readonly queue: Q
  /**
   * Handles one message. Resolve to finish it (deleted or archived, see `onSuccess`); throw to leave it
   * in the queue, where it reappears when its visibility timeout passes and is read again.
   */
  readonly handler: (message: PgmqMessage<PgmqMessageOf<Q>>, context: ConsumerContext) => unknown
  /** What to do with a handled message (default "archive"). */
  readonly onSuccess?: SuccessAction
  /** Most messages handled at once (default 10, at most 1000). */
  readonly concurrency?: number
  /** How long a read message stays invisible to other readers (default 30 seconds). */
  readonly visibilityTimeout?: Duration.Input
  /** How often to read when no notification came (default 1 second; at least 10 ms). */
  readonly pollInterval?: Duration.Input
  /**
   * LISTEN for sends (default true): on `awa_pgmq:<namespace>` (awa's `send_notify`) and on
   * `pgmq.q_<queue>.INSERT` (plain `pgmq.send` after `pgmq.enable_notify_insert`); see `sendChannelsFor`.
   * Polling remains the fallback.
   */
  readonly listen?: boolean
  /**
   * Archive a message instead of reading it again once it has been read this many times without success
   * (default: never give up). The `gave-up` event names it.
   */
  readonly maxReads?: number
  /** The client to read and finish messages with (default `makePgmqClient()`). */
  readonly client?: PgmqClient
  /** Called with every event; must not throw. */
  readonly onEvent?: (event: ConsumerEvent) => void
  /** `application_name` of the LISTEN connection (default "awa-pgmq-consumer"). */
  readonly applicationName?: string
}

/** Counters of a consumer since it started. */
export interface PgmqConsumerMetrics {
  /** The queue. */
  readonly queue: string
  /** Messages being handled now. */
  readonly inFlight: number
  /** Messages handed to the handler. */
  readonly received: number
  /** Messages handled and then deleted or archived. */
  readonly completed: number
  /** Handler failures (the message was left to reappear). */
  readonly failed: number
  /** Messages archived without handling because they did not match the queue's schema. */
  readonly invalid: number
  /** Messages archived after `maxReads` reads. */
  readonly gaveUp: number
  /** Wake-ups by a notification. */
  readonly notifications: number
  /** Whether the LISTEN connection is up. */
  readonly listening: boolean
}

/** How long after a pgmq insert notification the consumer reads again (pgmq's default throttle is 250 ms). */
const insertThrottleCatchUpMs = 300

const toMillis = (
  option: string,
  input: Duration.Input | undefined,
  fallback: number,
  min: number,
): number => {
  if (input === undefined) return fallback
  const decoded = Duration.fromInput(input)
  const ms = Option.isSome(decoded) ? Duration.toMillis(decoded.value) : Number.NaN
  if (!Number.isFinite(ms) || ms < min) {
    throw new InvalidPgmqOptions({
      option,
      value: String(input),
      expected: `a finite duration of at least ${min} ms`,
    })
  }
  return ms
}

/**
 * Consumes one pgmq queue: wakes on the queue's notification channels (with polling as the fallback and a
 * LISTEN connection that reconnects), reads with a visibility timeout, runs the handler with bounded
 * concurrency, and deletes or archives each message it finished. A message whose handler failed is left
 * alone and reappears once its visibility timeout passes. Delivery is at-least-once: a message can be
 * handled twice when its handler outlives the visibility timeout or the process dies before finishing it.
 */
export class PgmqConsumer<Q extends AnyPgmqQueue> {
  /** The queue. */
  readonly queue: Q
  readonly #pool: PgPool
  readonly #client: PgmqClient
  readonly #handler: PgmqConsumerOptions<Q>["handler"]
  readonly #onSuccess: SuccessAction
  readonly #concurrency: number
  readonly #vtSeconds: number
  readonly #pollMs: number
  readonly #maxReads: number | undefined
  readonly #onEvent: (event: ConsumerEvent) => void
  readonly #listener: Listener | undefined
  readonly #abort = new AbortController()
  readonly #inFlight = new Set<Promise<void>>()
  readonly #channels: ReadonlyArray<string>
  #counters = { received: 0, completed: 0, failed: 0, invalid: 0, gaveUp: 0, notifications: 0 }
  #stopping = false
  #wake: (() => void) | undefined
  #woken = false
  #backlog = false
  #loop: Promise<void> | undefined
  readonly #delayTimers = new Set<NodeJS.Timeout>()
  #requestStop: () => void = () => {}
  readonly #stopRequested = new Promise<void>((resolve) => {
    this.#requestStop = resolve
  })

  private constructor(options: PgmqConsumerOptions<Q>) {
    this.queue = options.queue
    this.#pool = options.pool
    this.#client = options.client ?? makePgmqClient()
    this.#handler = options.handler
    this.#onSuccess = options.onSuccess ?? "archive"
    if (this.#onSuccess !== "archive" && this.#onSuccess !== "delete") {
      throw new InvalidPgmqOptions({
        option: "onSuccess",
        value: String(this.#onSuccess),
        expected: '"archive" or "delete"',
      })
    }
    this.#concurrency = toCount("concurrency", options.concurrency, 10, 1, 1000)
    this.#vtSeconds = Math.max(1, toSeconds("visibilityTimeout", options.visibilityTimeout, 30))
    this.#pollMs = toMillis("pollInterval", options.pollInterval, 1000, 10)
    this.#maxReads =
      options.maxReads === undefined ? undefined : toCount("maxReads", options.maxReads, 1, 1, 1_000_000)
    const onEvent = options.onEvent
    this.#onEvent = (event) => {
      try {
        onEvent?.(event)
      } catch {
        // A listener's bug must not stop the consumer.
      }
    }
    const name = options.queue.name
    this.#channels = sendChannelsFor(name)
    this.#listener =
      options.listen === false
        ? undefined
        : new Listener({
            pool: options.pool,
            channels: this.#channels,
            applicationName: options.applicationName ?? "awa-pgmq-consumer",
            onNotification: (n) => this.#notified(n.channel, n.payload),
            onConnected: () => {
              this.#onEvent({ type: "listening", channels: this.#channels })
              // Anything sent while the connection was down announced itself to nobody: read now.
              this.#signal()
            },
            onError: (error) => this.#onEvent({ type: "error", context: "listen", error }),
          })
  }

  /** Starts a consumer; throws `InvalidPgmqOptions` for bad options. It reads at once, then on wake-ups. */
  static start<Q extends AnyPgmqQueue>(options: PgmqConsumerOptions<Q>): PgmqConsumer<Q> {
    const consumer = new PgmqConsumer(options)
    consumer.#listener?.start()
    consumer.#loop = consumer.#run()
    return consumer
  }

  /** The channels this consumer listens on (none when `listen` is false). */
  get channels(): ReadonlyArray<string> {
    return this.#listener === undefined ? [] : this.#channels
  }

  /** The consumer's counters. */
  metrics(): PgmqConsumerMetrics {
    return {
      queue: this.queue.name,
      inFlight: this.#inFlight.size,
      ...this.#counters,
      listening: this.#listener?.connected ?? false,
    }
  }

  /** Resolves once the LISTEN connection is up (at once when not listening). */
  async listening(): Promise<void> {
    while (this.#listener !== undefined && !this.#listener.connected && !this.#stopping) {
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
  }

  /** The backend pid of the LISTEN connection, or undefined while it is down (for tests that break it). */
  listenerBackendPid(): Promise<number | undefined> {
    return this.#listener?.backendPid() ?? Promise.resolve(undefined)
  }

  #notified(channel: string, payload: string): void {
    if (channel.startsWith("awa_pgmq:")) {
      const event = parseAwaSentEvent(payload)
      // The namespace channel carries every queue of the namespace: only this queue's sends matter.
      if (event === undefined || event.queue !== this.queue.name) return
      if (event.delay > 0) {
        this.#signalAfter(event.delay * 1000)
        return
      }
    }
    this.#counters.notifications++
    this.#onEvent({ type: "woken", channel })
    this.#signal()
    // pgmq throttles insert notifications (250 ms by default): a send soon after a notified one announces
    // itself to nobody. Read once more when that window has passed, so it is not left to the poll.
    if (channel.startsWith("pgmq.q_")) this.#signalAfter(insertThrottleCatchUpMs)
  }

  #signalAfter(ms: number): void {
    const timer = setTimeout(() => {
      this.#delayTimers.delete(timer)
      this.#signal()
    }, ms)
    this.#delayTimers.add(timer)
  }

  #signal(): void {
    this.#woken = true
    this.#wake?.()
  }

  async #sleep(ms: number): Promise<void> {
    if (this.#woken || this.#stopping) return
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms)
      function done() {
        clearTimeout(timer)
        resolve()
      }
      this.#wake = done
    })
    this.#wake = undefined
  }

  async #run(): Promise<void> {
    let failures = 0
    while (!this.#stopping) {
      const free = this.#concurrency - this.#inFlight.size
      if (free <= 0) {
        // Every slot is busy: wait for one to free up, or for stop().
        await Promise.race([...this.#inFlight, this.#stopRequested])
        continue
      }
      this.#woken = false
      let batch: { readonly messages: ReadonlyArray<PgmqMessage<PgmqMessageOf<Q>>>; readonly rows: number }
      try {
        batch = await this.#readBatch(free)
        failures = 0
      } catch (error) {
        this.#onEvent({ type: "error", context: "read", error })
        failures++
        await this.#sleep(Math.min(this.#pollMs, 100 * 2 ** Math.min(failures, 6)))
        continue
      }
      for (const message of batch.messages) this.#dispatch(message)
      // A full batch suggests more are waiting: read again at once, and again whenever a slot frees up.
      this.#backlog = batch.rows === free
      if (!this.#backlog) await this.#sleep(this.#pollMs)
    }
  }

  /** Reads up to `limit` messages; `rows` counts the invalid ones too (archived here). */
  async #readBatch(
    limit: number,
  ): Promise<{ readonly messages: ReadonlyArray<PgmqMessage<PgmqMessageOf<Q>>>; readonly rows: number }> {
    try {
      const messages = await this.#client.read(this.#pool, this.queue, {
        visibilityTimeout: `${this.#vtSeconds} seconds`,
        limit,
      })
      return { messages, rows: messages.length }
    } catch (error) {
      if (!(error instanceof InvalidPgmqMessage)) throw error
      // A message that can never decode would be read forever: archive it, with its payload kept there.
      for (const bad of error.invalid) {
        this.#counters.invalid++
        this.#onEvent({ type: "invalid", msgId: String(bad.msgId), issue: bad.issue })
        await this.#client
          .archive(this.#pool, this.queue, String(bad.msgId))
          .catch((archiveError: unknown) =>
            this.#onEvent({ type: "error", context: "archive invalid message", error: archiveError }),
          )
      }
      const valid = error.valid as ReadonlyArray<PgmqMessage<PgmqMessageOf<Q>>>
      return { messages: valid, rows: valid.length + error.invalid.length }
    }
  }

  #dispatch(message: PgmqMessage<PgmqMessageOf<Q>>): void {
    const task = this.#handle(message).finally(() => {
      this.#inFlight.delete(task)
      // A freed slot is worth a read only when the last one suggested a backlog; new sends notify.
      if (this.#backlog) this.#signal()
    })
    this.#inFlight.add(task)
  }

  async #handle(message: PgmqMessage<PgmqMessageOf<Q>>): Promise<void> {
    this.#counters.received++
    try {
      await this.#handler(message, { signal: this.#abort.signal })
    } catch (error) {
      this.#counters.failed++
      this.#onEvent({ type: "failed", msgId: message.msgId, readCount: message.readCount, error })
      if (this.#maxReads !== undefined && message.readCount >= this.#maxReads) {
        await this.#finish(message, "archive", true)
      }
      return
    }
    await this.#finish(message, this.#onSuccess, false)
  }

  async #finish(message: PgmqMessage<unknown>, action: SuccessAction, gaveUp: boolean): Promise<void> {
    try {
      if (action === "archive") await this.#client.archive(this.#pool, this.queue, message.msgId)
      else await this.#client.delete(this.#pool, this.queue, message.msgId)
    } catch (error) {
      // Left in place, the message reappears after its visibility timeout and is handled again.
      this.#onEvent({
        type: "error",
        context: `${action} message ${message.msgId}`,
        error: toDatabaseError(action, error),
      })
      return
    }
    if (gaveUp) {
      this.#counters.gaveUp++
      this.#onEvent({ type: "gave-up", msgId: message.msgId, readCount: message.readCount })
    } else {
      this.#counters.completed++
      this.#onEvent({ type: "completed", msgId: message.msgId, action })
    }
  }

  /**
   * Stops reading, waits up to `timeout` (default 10 seconds) for running handlers, then fires their
   * signal and returns; messages not finished reappear after their visibility timeout.
   */
  async stop(options?: { readonly timeout?: Duration.Input }): Promise<void> {
    const timeoutMs = toMillis("timeout", options?.timeout, 10_000, 0)
    this.#stopping = true
    this.#requestStop()
    this.#wake?.()
    for (const timer of this.#delayTimers) clearTimeout(timer)
    await this.#listener?.close()
    await this.#loop
    let timer: NodeJS.Timeout | undefined
    const timedOut = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, timeoutMs)
    })
    await Promise.race([Promise.all([...this.#inFlight]), timedOut])
    clearTimeout(timer)
    if (this.#inFlight.size > 0) this.#abort.abort(new Error("The pgmq consumer stopped"))
  }
}
