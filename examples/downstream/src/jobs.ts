// The application's two kinds of job. Definitions carry no handler, so code that only enqueues imports
// nothing else.
import { defineJob } from "@awa/model"
import { Schema } from "effect"

/** Welcomes a new user by email, once per address. */
export const SendWelcomeEmail = defineJob({
  kind: "send_welcome_email",
  args: Schema.Struct({ email: Schema.String, name: Schema.String }),
  queue: "email",
  unique: true,
})

/** Charges an invoice when it falls due. */
export const ChargeInvoice = defineJob({
  kind: "charge_invoice",
  args: Schema.Struct({ invoiceId: Schema.String, amountCents: Schema.Number }),
  queue: "billing",
  priority: 1,
  maxAttempts: 5,
})
