// A LISTEN connection on the pgmq database that reconnects by itself: after every (re)connect it LISTENs
// again and calls `onConnected`, so the consumer reads once for anything announced while it was away.
import {
  listenStatement,
  type Notification,
  openSession,
  type PgPool,
  type Session,
} from "@awa/runtime/PgExecutor"

/** Options of a listener. */
export interface ListenerOptions {
  readonly pool: PgPool
  readonly channels: ReadonlyArray<string>
  readonly applicationName: string
  readonly onNotification: (notification: Notification) => void
  readonly onConnected: () => void
  readonly onError: (error: unknown) => void
}

const reconnectDelaysMs = [50, 100, 250, 500, 1000, 2000, 5000]

/** Keeps one session LISTENing on the given channels until closed. */
export class Listener {
  readonly #options: ListenerOptions
  #session: Session | undefined
  #closed = false
  #timer: NodeJS.Timeout | undefined
  #failures = 0

  constructor(options: ListenerOptions) {
    this.#options = options
  }

  /** Connects and LISTENs; when that fails the error is reported and reconnecting starts. */
  start(): void {
    this.#connect().catch((error: unknown) => this.#failed(error))
  }

  /** True while a LISTEN connection is up. */
  get connected(): boolean {
    return this.#session !== undefined
  }

  /** The backend pid of the LISTEN connection (for tests that kill it), or undefined when down. */
  async backendPid(): Promise<number | undefined> {
    const session = this.#session
    if (session === undefined) return undefined
    const rows = await session.executor.query<{ pid: number }>(
      "listener pid",
      { name: "awa_pgmq_backend_pid", text: "SELECT pg_backend_pid() AS pid", prepared: false },
      [],
    )
    return rows[0]?.pid
  }

  async #connect(): Promise<void> {
    const session = await openSession(this.#options.pool, this.#options.applicationName)
    if (this.#closed) {
      await session.close()
      return
    }
    session.onNotification(this.#options.onNotification)
    session.onLost((error) => {
      if (this.#session === session) this.#session = undefined
      this.#failed(error)
    })
    try {
      for (const channel of this.#options.channels) {
        await session.executor.query("listen", listenStatement(channel), [])
      }
    } catch (error) {
      await session.close()
      throw error
    }
    if (this.#closed) {
      await session.close()
      return
    }
    this.#session = session
    this.#failures = 0
    this.#options.onConnected()
  }

  #failed(error: unknown): void {
    if (this.#closed) return
    this.#options.onError(error)
    if (this.#timer !== undefined) return
    const delay = reconnectDelaysMs[Math.min(this.#failures, reconnectDelaysMs.length - 1)]!
    this.#failures++
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      this.#connect().catch((next: unknown) => this.#failed(next))
    }, delay)
  }

  /** Stops listening and closes the connection. */
  async close(): Promise<void> {
    this.#closed = true
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    const session = this.#session
    this.#session = undefined
    await session?.close()
  }
}
