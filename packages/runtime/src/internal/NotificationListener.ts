// A LISTEN connection that reconnects by itself: after every (re)connect it LISTENs again and calls
// `onConnected`, so callers can poll once for anything announced while it was away.
import type { DatabaseError } from "../DatabaseError.js"
import { listenStatement, type Notification, openSession, type PgPool, type Session } from "../PgExecutor.js"

/** Options of a notification listener. */
export interface NotificationListenerOptions {
  readonly pool: PgPool
  readonly channels: ReadonlyArray<string>
  readonly applicationName: string
  readonly onNotification: (notification: Notification) => void
  readonly onConnected: () => void
  readonly onError: (error: unknown) => void
}

const reconnectDelaysMs = [50, 100, 250, 500, 1000, 2000]

/** Keeps one session LISTENing on the given channels until closed. */
export class NotificationListener {
  readonly #options: NotificationListenerOptions
  #session: Session | undefined
  #closed = false
  #timer: NodeJS.Timeout | undefined
  #failures = 0

  constructor(options: NotificationListenerOptions) {
    this.#options = options
  }

  /**
   * Connects and LISTENs; rejects with `DatabaseError` when the first connection fails, and then is closed
   * (no reconnect is left behind).
   */
  async start(): Promise<void> {
    try {
      await this.#connect()
    } catch (error) {
      await this.close()
      throw error
    }
  }

  async #connect(): Promise<void> {
    const session = await openSession(this.#options.pool, this.#options.applicationName)
    if (this.#closed) {
      await session.close()
      return
    }
    session.onNotification(this.#options.onNotification)
    session.onLost((error: DatabaseError) => {
      if (this.#session === session) this.#session = undefined
      if (this.#closed) return
      this.#options.onError(error)
      this.#scheduleReconnect()
    })
    try {
      for (const channel of this.#options.channels) {
        await session.executor.query("listen", listenStatement(channel), [])
      }
    } catch (error) {
      await session.close()
      throw error
    }
    // Closed while LISTENing: nobody would close this session later.
    if (this.#closed) {
      await session.close()
      return
    }
    this.#session = session
    this.#failures = 0
    this.#options.onConnected()
  }

  #scheduleReconnect(): void {
    if (this.#closed || this.#timer !== undefined) return
    const delay = reconnectDelaysMs[Math.min(this.#failures, reconnectDelaysMs.length - 1)]!
    this.#failures++
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      this.#connect().catch((error: unknown) => {
        if (this.#closed) return
        this.#options.onError(error)
        this.#scheduleReconnect()
      })
    }, delay)
  }

  /** True while a LISTEN connection is up. */
  get connected(): boolean {
    return this.#session !== undefined
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
