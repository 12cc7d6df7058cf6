// The queue-storage read model (job_rows, behind getJob, listJobs and jobs_all): a running job's attempt comes
// from its claim receipt, whether it was claimed in lane order (a receipt covering its lane_seq) or out of it (a
// claimed tombstone and a receipt of its own), and every other row keeps its state around them.
import { describe, expect, it } from "vitest"
import type { ClaimedJob, Job } from "../src/Engine.js"
import { toExecutor } from "../src/PgExecutor.js"
import { makeQueueStorageEngine } from "../src/QueueStorageEngine.js"
import { useAwaDatabase } from "./support/awaDatabase.js"
import { insertIds, qsRow } from "./support/queueStorage.js"

const db = useAwaDatabase()
const engine = makeQueueStorageEngine()
const queue = "read-model"

const claim = (limit: number, kinds?: ReadonlyArray<string>) =>
  engine.claim(toExecutor(db.pool), { queue, limit, defaultTimeoutMs: 60_000, ...(kinds ? { kinds } : {}) })

describe("queue-storage read model", () => {
  it("reads a running job's attempt from its receipt, claimed in lane order or out of it, among settled and pending rows", async () => {
    const x = toExecutor(db.pool)
    const kinds = ["rm.a", "rm.b", "rm.a", "rm.b", "rm.a", "rm.b", "rm.a"]
    const ids = await insertIds(
      engine,
      x,
      kinds.map((kind, n) => qsRow(n, queue, { kind })),
    )
    // b1, b2 out of lane order (a1 stays at the cursor); then a1, a2 and a3 in order, past the tombstoned b1 and
    // b2, in two receipts; then b3 out of order again, leaving a4 behind it.
    const outOfOrder = await claim(2, ["rm.b"])
    const inOrder = [...(await claim(2)), ...(await claim(1))]
    const late = await claim(1, ["rm.b"])
    expect([...outOfOrder, ...inOrder, ...late].map((j) => j.id)).toEqual([
      ids[1],
      ids[3],
      ids[0],
      ids[2],
      ids[4],
      ids[5],
    ])
    // One of each kind completes; the rest stay running.
    expect((await engine.complete(x, [inOrder[0]!, outOfOrder[0]!])).stale).toEqual([])

    const expectRunning = (job: Job | null | undefined, claimed: ClaimedJob) => {
      expect(job).toMatchObject({ state: "running", attempt: 1, runLease: 1 })
      expect(job?.attemptedAt?.getTime()).toBe(claimed.attemptedAt.getTime())
      expect(job?.deadlineAt?.getTime()).toBe(claimed.deadlineAt.getTime())
    }
    const expectCompleted = (job: Job | null | undefined) => {
      expect(job).toMatchObject({ state: "completed", attempt: 1, runLease: 1 })
      expect(job?.finalizedAt).not.toBeNull()
    }
    const check = (read: (id: string) => Job | null | undefined) => {
      expectCompleted(read(ids[1]!))
      expectRunning(read(ids[3]!), outOfOrder[1]!)
      expectCompleted(read(ids[0]!))
      expectRunning(read(ids[2]!), inOrder[1]!)
      expectRunning(read(ids[4]!), inOrder[2]!)
      expectRunning(read(ids[5]!), late[0]!)
      expect(read(ids[6]!)).toMatchObject({
        state: "available",
        attempt: 0,
        attemptedAt: null,
        deadlineAt: null,
      })
    }
    const byId = new Map<string, Job | null>()
    for (const id of ids) byId.set(id, await engine.getJob(x, id))
    check((id) => byId.get(id))
    const listed = await engine.listJobs(x, { queue }, { limit: 100 })
    expect(listed.items.map((j) => j.id)).toEqual(ids)
    check((id) => listed.items.find((j) => j.id === id))
  })
})
