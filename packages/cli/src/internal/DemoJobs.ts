// The sample workload of `awa demo`: job definitions, their handlers, and a batch of jobs that shows the
// lifecycle: quick jobs, a few snoozes, failures that retry and then succeed, failures that exhaust their
// attempts into the dead-letter queue, jobs that fail at once, scheduled jobs and unique jobs.
import { setTimeout as sleep } from "node:timers/promises"
import { defineJob } from "@awa/model/JobDefinition"
import { handle, type JobHandler } from "@awa/runtime/JobHandler"
import { fail, snooze } from "@awa/runtime/JobOutcome"
import { type JobToInsert, job } from "@awa/runtime/Producer"
import { Schema } from "effect"

/** The demo's queues (the webhook queue has its dead-letter queue enabled). */
export const demoQueues = {
  email: "demo_email",
  media: "demo_media",
  webhooks: "demo_webhooks",
  reports: "demo_reports",
} as const

/** Sends an email (simulated); one address in 40 is rate-limited once and snoozes. */
export const SendEmail = defineJob({
  kind: "demo.send_email",
  args: Schema.Struct({ to: Schema.String, template: Schema.String }),
  queue: demoQueues.email,
})

/** Resizes an image (simulated); one image in 50 is corrupt and fails at once, without retrying. */
export const ResizeImage = defineJob({
  kind: "demo.resize_image",
  args: Schema.Struct({ imageId: Schema.Number, width: Schema.Number }),
  queue: demoQueues.media,
})

/** Delivers a webhook (simulated); its endpoint answers 503 for the first `failTimes` attempts. */
export const DeliverWebhook = defineJob({
  kind: "demo.deliver_webhook",
  args: Schema.Struct({ endpoint: Schema.String, failTimes: Schema.Number }),
  queue: demoQueues.webhooks,
  maxAttempts: 3,
})

/** Builds an account's daily report (simulated); enqueued to run a few seconds from now. */
export const DailyReport = defineJob({
  kind: "demo.daily_report",
  args: Schema.Struct({ accountId: Schema.Number }),
  queue: demoQueues.reports,
})

/** Syncs an account (simulated); unique per account, so a duplicate insert is refused while one is pending. */
export const SyncAccount = defineJob({
  kind: "demo.sync_account",
  args: Schema.Struct({ accountId: Schema.Number }),
  queue: demoQueues.email,
  unique: true,
})

const work = (minMs: number, maxMs: number) => sleep(minMs + Math.random() * (maxMs - minMs))

/** The handlers of the demo's job kinds. */
export const demoHandlers = (): ReadonlyArray<JobHandler> => [
  handle(SendEmail, async ({ to }, { job: running }) => {
    // Snoozing does not use up an attempt: the job runs again after the delay.
    if (to.includes("+busy") && running.runLease === 1) return snooze("300 millis")
    await work(0, 3)
  }),
  handle(ResizeImage, async ({ imageId }) => {
    if (imageId % 50 === 0) return fail(`image ${imageId} is corrupt: cannot decode PNG header`)
    await work(1, 4)
  }),
  handle(DeliverWebhook, async ({ endpoint, failTimes }, { job: running }) => {
    await work(0, 2)
    if (running.attempt <= failTimes) throw new Error(`POST ${endpoint} answered 503 Service Unavailable`)
  }),
  handle(DailyReport, async () => {
    await work(5, 15)
  }),
  handle(SyncAccount, async () => {
    await work(1, 3)
  }),
]

/** How many jobs of each kind a demo of `total` jobs enqueues. */
export interface DemoPlan {
  readonly emails: number
  readonly images: number
  readonly webhooks: number
  readonly reports: number
  readonly syncs: number
}

/** Splits `total` jobs over the kinds. */
export const demoPlan = (total: number): DemoPlan => {
  const reports = Math.max(5, Math.round(total * 0.05))
  const syncs = Math.max(5, Math.round(total * 0.025))
  const webhooks = Math.max(10, Math.round(total * 0.2))
  const images = Math.max(10, Math.round(total * 0.3))
  const emails = Math.max(10, total - reports - syncs - webhooks - images)
  return { emails, images, webhooks, reports, syncs }
}

/** Email jobs: every 40th address is "busy" (snoozes once). */
export const emailJobs = (count: number): Array<JobToInsert> =>
  Array.from({ length: count }, (_, i) =>
    job(SendEmail, {
      to: `user${i}${i % 40 === 7 ? "+busy" : ""}@example.com`,
      template: i % 3 === 0 ? "welcome" : "receipt",
    }),
  )

/** Image jobs (every 50th image is corrupt). */
export const imageJobs = (count: number): Array<JobToInsert> =>
  Array.from({ length: count }, (_, i) => job(ResizeImage, { imageId: i + 1, width: 320 * (1 + (i % 3)) }))

/**
 * Webhook jobs: most succeed at once, some after one or two 503s (retried with backoff), and one in 25
 * never succeeds: after 3 attempts it lands in the dead-letter queue.
 */
export const webhookJobs = (count: number): Array<JobToInsert> =>
  Array.from({ length: count }, (_, i) => {
    const failTimes = i % 25 === 0 ? 99 : i % 10 === 1 ? 1 : i % 10 === 2 ? 2 : 0
    return job(DeliverWebhook, { endpoint: `https://hooks.example.com/${i % 17}`, failTimes })
  })

/** Report jobs, due 1.5 to 4 seconds from now (scheduled until then). */
export const reportJobs = (count: number): Array<JobToInsert> =>
  Array.from({ length: count }, (_, i) =>
    job(
      DailyReport,
      { accountId: i + 1 },
      { delay: `${1500 + Math.round((2500 * i) / Math.max(1, count - 1))} millis` },
    ),
  )

/** Unique sync jobs for accounts 1..count (insert them twice to see the conflicts). */
export const syncJobs = (count: number): Array<JobToInsert> =>
  Array.from({ length: count }, (_, i) => job(SyncAccount, { accountId: i + 1 }))
