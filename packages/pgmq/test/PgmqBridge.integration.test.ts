// The bridge's crash windows with real processes killed by SIGKILL, in single and split mode: ingest dies
// between the job insert (primary) and the archive (pgmq database); publish dies between the send (pgmq
// database) and the job's completion (primary). Either way, one effect.
import { type ChildProcess, spawn } from "node:child_process"
import { fileURLToPath } from "node:url"
import { makeAdmin } from "@awa/runtime/Admin"
import { Schema } from "effect"
import { describe, expect, it, onTestFinished } from "vitest"
import { useChildDist } from "../../runtime/test/support/childDist.js"
import { waitFor } from "../../runtime/test/support/wait.js"
import { makePgmqClient } from "../src/PgmqClient.js"
import { defineIngestJob, PgmqIngest } from "../src/PgmqIngest.js"
import { PgmqPublishJob, publishToPgmq } from "../src/PgmqPublish.js"
import { definePgmqQueue } from "../src/PgmqQueue.js"
import { queueName, usePgmqDatabases } from "./support/pgmqDatabases.js"

const packageDir = fileURLToPath(new URL("..", import.meta.url))
const fixture = fileURLToPath(new URL("./fixtures/bridgeProcess.mjs", import.meta.url))
// The children run this package compiled from the current sources into a folder of their own.
const childDist = useChildDist(packageDir, "awa-pgmq-bridge-test-dist")

const client = makePgmqClient()
const admin = makeAdmin()
const Order = Schema.Struct({ order: Schema.String })

/** A bridge process (see fixtures/bridgeProcess.mjs) with the lines it printed. */
const spawnBridge = (
  role: "ingest" | "publish",
  urls: { readonly primaryUrl: string; readonly pgmqUrl: string },
  queue: string,
  pause: boolean,
) => {
  const child: ChildProcess = spawn(
    process.execPath,
    [fixture, role, urls.primaryUrl, urls.pgmqUrl, queue, childDist],
    {
      cwd: packageDir,
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, AWA_PGMQ_TEST_PAUSE: pause ? "1" : "0" },
    },
  )
  const lines: Array<string> = []
  let stderr = ""
  child.stdout
    ?.setEncoding("utf8")
    .on("data", (chunk: string) => lines.push(...chunk.split("\n").filter(Boolean)))
  child.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
    stderr += chunk
  })
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()))
  const kill = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
    await exited
  }
  onTestFinished(kill)
  return {
    lines,
    kill,
    waitForLine: (prefix: string) =>
      waitFor(
        `${role} process to print "${prefix}" (printed: ${lines.join(" | ")}; stderr: ${stderr.slice(-800)})`,
        () => lines.find((line) => line.startsWith(prefix)),
        30_000,
      ),
  }
}

const archivedIds = async (pool: import("pg").Pool, queue: string): Promise<Array<string>> =>
  (await pool.query(`SELECT msg_id::text AS id FROM pgmq."a_${queue}" ORDER BY msg_id`)).rows.map((r) => r.id)

describe.each(["single", "split"] as const)("the bridge in %s mode", (mode) => {
  const db = usePgmqDatabases(mode)

  it("ingest: killed between the job insert and the archive, exactly one job exists after the restart", async () => {
    const queue = definePgmqQueue({ name: queueName("ingest"), message: Order })
    const Ingested = defineIngestJob({ kind: "bridge_test.ingested", source: queue })
    await client.createQueue(db.pgmq, queue)
    const msgId = await client.send(db.pgmq, queue, { order: "o-1" })

    const first = spawnBridge("ingest", db, queue.name, true)
    expect(await first.waitForLine("inserted")).toBe(`inserted ${msgId} Inserted`)
    await first.kill()
    // The crash window: the job committed on the primary, the message is still in the queue.
    const [job] = (await admin.listJobs(db.primary, { kind: Ingested.kind })).items
    expect(job?.args).toEqual({
      source: { queue: queue.name, key: `msg:${msgId}` },
      message: { order: "o-1" },
      headers: null,
    })
    expect(job?.metadata).toMatchObject({ pgmq: { queue: queue.name, msgId } })
    expect((await client.metrics(db.pgmq, queue)).length).toBe(1)

    const second = spawnBridge("ingest", db, queue.name, false)
    // The message reappears after its visibility timeout; the insert finds the key held, then archives.
    expect(await second.waitForLine("inserted")).toBe(`inserted ${msgId} UniqueConflict`)
    await second.waitForLine(`archived ${msgId}`)
    await second.kill()
    const jobs = (await admin.listJobs(db.primary, { kind: Ingested.kind })).items
    expect(jobs.map((j) => j.id)).toEqual([job?.id])
    expect(await archivedIds(db.pgmq, queue.name)).toEqual([msgId])
    expect((await client.metrics(db.pgmq, queue)).length).toBe(0)
  })

  it("publish: killed between the send and the job's completion, the resent message is recognised: one effect", async () => {
    const queue = definePgmqQueue({ name: queueName("publish"), message: Order })
    await client.createQueue(db.pgmq, queue)
    // The outbox job commits with the caller's transaction on the primary.
    const tx = await db.primary.connect()
    let published: Awaited<ReturnType<typeof publishToPgmq>>
    try {
      await tx.query("BEGIN")
      published = await publishToPgmq(tx, queue, { order: "o-2" }, { headers: { source: "checkout" } })
      await tx.query("COMMIT")
    } finally {
      tx.release()
    }
    if (published._tag !== "Inserted") throw new Error("the outbox job was not inserted")
    const jobId = published.id

    const first = spawnBridge("publish", db, queue.name, true)
    const [, firstMsg, firstJob] = (await first.waitForLine("sent")).split(" ")
    expect(firstJob).toBe(jobId)
    await first.kill()
    expect((await admin.getJob(db.primary, jobId)).state).toBe("running")

    // A new worker rescues the attempt (stale heartbeat) and runs the job again: a second send.
    const second = spawnBridge("publish", db, queue.name, false)
    const [, secondMsg] = (await second.waitForLine("sent")).split(" ")
    await second.waitForLine(`completed ${jobId}`)
    await second.kill()
    expect(secondMsg).not.toBe(firstMsg)
    expect((await admin.getJob(db.primary, jobId)).state).toBe("completed")
    const inQueue = await db.pgmq.query(
      `SELECT msg_id::text AS id, headers FROM pgmq."q_${queue.name}" ORDER BY msg_id`,
    )
    expect(inQueue.rows).toEqual([
      { id: firstMsg, headers: { source: "checkout", "awa-job-id": jobId } },
      { id: secondMsg, headers: { source: "checkout", "awa-job-id": jobId } },
    ])

    // The receiving side recognises the redelivery by its awa-job-id: two messages, one job.
    const Ingested = defineIngestJob({ kind: "bridge_test.published", source: queue })
    const ingest = PgmqIngest.start({
      pgmqPool: db.pgmq,
      primaryPool: db.primary,
      queue,
      job: Ingested,
      pollInterval: 20,
    })
    onTestFinished(() => ingest.stop({ timeout: 0 }))
    await waitFor("both messages archived", async () => (await archivedIds(db.pgmq, queue.name)).length === 2)
    const jobs = (await admin.listJobs(db.primary, { kind: Ingested.kind })).items
    expect(jobs).toHaveLength(1)
    expect(jobs[0]?.args).toMatchObject({ source: { key: `awa-job:${jobId}` }, message: { order: "o-2" } })
    expect((await admin.listJobs(db.primary, { kind: PgmqPublishJob.kind })).items).toHaveLength(1)
  })

  it("publish refuses a message that does not match the queue's schema, inserting nothing", async () => {
    const queue = definePgmqQueue({ name: queueName("refused"), message: Order })
    await expect(publishToPgmq(db.primary, queue, { order: 5 } as never)).rejects.toMatchObject({
      _tag: "InvalidPgmqMessage",
      phase: "send",
    })
    const outbox = (await admin.listJobs(db.primary, { kind: PgmqPublishJob.kind })).items
    expect(outbox.filter((j) => (j.args as { queue: string }).queue === queue.name)).toEqual([])
  })
})
