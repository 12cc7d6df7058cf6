// Application code that enqueues jobs, inside its own transactions.
import { type Db, makeProducer, withTransaction } from "@awa/runtime"
import type pg from "pg"
import { ChargeInvoice, SendWelcomeEmail } from "./jobs.js"

const producer = makeProducer()

/** A sign-up: validates the user and enqueues the welcome email in the same transaction. */
export const signUp = (pool: pg.Pool, user: { readonly email: string; readonly name: string }) =>
  withTransaction(pool, async (client) => {
    const result = await producer.insert(client, SendWelcomeEmail, user)
    // Anything that fails after the insert rolls the job back with the rest of the sign-up.
    if (!user.email.includes("@")) throw new Error(`not an email address: ${user.email}`)
    return result
  })

/** Schedules an invoice to be charged at `dueAt`. */
export const scheduleInvoice = (db: Db, invoiceId: string, amountCents: number, dueAt: Date) =>
  producer.insert(db, ChargeInvoice, { invoiceId, amountCents }, { runAt: dueAt })
