// The handlers that work the application's jobs, given the services they talk to.
import { cancel, handle, type JobHandler, snooze } from "@awa/runtime"
import { ChargeInvoice, SendWelcomeEmail } from "./jobs.js"

/** Sends email. */
export interface Mailer {
  readonly send: (to: string, subject: string) => Promise<void>
}

/** Charges money: resolves to what the payment provider said, rejects when it cannot be reached. */
export interface Payments {
  readonly charge: (invoiceId: string, amountCents: number) => Promise<"paid" | "declined" | "busy">
}

/** The application's handlers: register them with `Worker.start({ pool, handlers })`. */
export const makeHandlers = (services: { readonly mailer: Mailer; readonly payments: Payments }) =>
  [
    handle(SendWelcomeEmail, async ({ email, name }) => {
      await services.mailer.send(email, `Welcome, ${name}!`)
    }),
    handle(ChargeInvoice, async ({ invoiceId, amountCents }) => {
      const answer = await services.payments.charge(invoiceId, amountCents)
      if (answer === "declined") return cancel(`card declined for invoice ${invoiceId}`)
      if (answer === "busy") return snooze("5 minutes")
      // "paid": returning completes the job; a thrown error (provider unreachable) retries with backoff.
      return undefined
    }),
  ] satisfies ReadonlyArray<JobHandler>
