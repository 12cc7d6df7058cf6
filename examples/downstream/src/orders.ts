// Orders arrive as pgmq messages (other services send them with any pgmq client) and become awa jobs
// through the bridge's ingest side, exactly once per message.
import { defineIngestJob } from "@awa/pgmq/PgmqIngest"
import { definePgmqQueue } from "@awa/pgmq/PgmqQueue"
import { Schema } from "effect"

/** The pgmq queue other services send orders to. */
export const OrdersQueue = definePgmqQueue({
  name: "orders",
  message: Schema.Struct({ orderId: Schema.String, total: Schema.Number }),
})

/** The awa job each order message becomes. */
export const ProcessOrder = defineIngestJob({ kind: "orders.process", source: OrdersQueue, queue: "orders" })
