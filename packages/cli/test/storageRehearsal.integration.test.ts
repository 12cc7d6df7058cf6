// The storage-transition rehearsal (issue 9's acceptance): a canonical deployment with jobs in every state
// is moved prepare -> enter-mixed -> finalize with the `awa` CLI while two real `awa worker` processes and two
// producers keep running. The invariants (no job lost or in two places, none completed twice, never two live
// holders of a unique key across both engines) are checked again and again during the run, and at the end
// every job id is where its script says. Engine-specific: it reads both engines' tables through the storage
// invariants of @awa/testing.
import { spawn } from "node:child_process"
import { join } from "node:path"
import { setTimeout as sleep } from "node:timers/promises"
import type { InsertOptions } from "@awa/model/InsertOptions"
import { defineJob } from "@awa/model/JobDefinition"
import { canonicalEngine } from "@awa/runtime/CanonicalEngine"
import { toExecutor } from "@awa/runtime/PgExecutor"
import { makeProducer } from "@awa/runtime/Producer"
import {
  assertStorageInvariants,
  checkCompletedOnce,
  checkNoJobLost,
  checkUniqueHolders,
  readJobPlaces,
} from "@awa/testing/StorageInvariants"
import { Schema } from "effect"
import { describe, expect, it } from "vitest"
import { ExitCode } from "../src/ExitCode.js"
import { migratedDatabase } from "./support/awaDatabase.js"
import { awa } from "./support/cli.js"
import { until } from "./support/jobs.js"
import { watch } from "./support/process.js"

// The same definition as fixtures/rehearsal-tasks.mjs, whose handler runs in the worker processes.
const Rehearsal = defineJob({
  kind: "rehearsal.task",
  args: Schema.Struct({ script: Schema.String, key: Schema.Number }),
})
type Script = "ok" | "flaky" | "snooze" | "slow" | "slow-flaky" | "slow-snooze" | "doomed"

const fixture = join(import.meta.dirname, "fixtures", "rehearsal-tasks.mjs")
const bin = join(import.meta.dirname, "..", "dist", "bin.js")

describe("storage transition rehearsal", () => {
  it("moves a busy canonical deployment to queue storage: nothing lost, nothing completed twice, unique keys held throughout", async () => {
    const { url, pool } = await migratedDatabase()
    const x = toExecutor(pool)
    const cli = (...argv: Array<string>) => awa([...argv, "--database-url", url])
    await pool.query(`CREATE SCHEMA rehearsal;
      CREATE TABLE rehearsal.events (job_id bigint NOT NULL, run_lease bigint NOT NULL, attempt integer NOT NULL,
        event text NOT NULL, pid integer NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp());
      CREATE TABLE rehearsal.snoozed (job_id bigint PRIMARY KEY);`)

    // The ledger of expectations: each job id and the states it may end in; the ids that must complete.
    const expected = new Map<string, ReadonlyArray<string>>()
    const mustComplete = new Set<string>()
    const expect_ = (id: string, ends: ReadonlyArray<string>) => {
      expected.set(id, ends)
      if (ends.length === 1 && ends[0] === "completed") mustComplete.add(id)
      else mustComplete.delete(id)
    }
    const endOf = (script: Script, queue: string): string =>
      script === "doomed" ? (queue === "dead" ? "dead_lettered" : "failed") : "completed"
    const producer = makeProducer()
    let conflicts = 0
    const enqueue = async (script: Script, key: number, options: InsertOptions = {}) => {
      const r = await producer.insert(pool, Rehearsal, { script, key }, options)
      if (r._tag !== "Inserted") {
        conflicts++
        return undefined
      }
      expect_(r.id, [endOf(script, options.queue ?? "default")])
      return r.id
    }

    // --- A canonical deployment with jobs in every state. ---
    expect(JSON.parse((await cli("storage", "status", "--json")).stdout).state).toBe("canonical")
    expect((await cli("queue", "dlq", "enable", "dead")).code).toBe(ExitCode.ok)
    // Jobs that an operator fails or dead-letters by hand (claimed here, before any worker runs).
    const failedThenRetried = await enqueue("ok", 900, { queue: "manual", unique: true })
    const failedForGood = await enqueue("doomed", 901, { queue: "manual" })
    const retryable = await Promise.all(
      [1, 2, 3].map((k) => enqueue("flaky", 910 + k, { queue: "manual", unique: true })),
    )
    const deadThenRetried = await enqueue("ok", 920, { queue: "dead", unique: true })
    const deadForGood = await enqueue("doomed", 921, { queue: "dead" })
    const claimed = [
      ...(await canonicalEngine.claim(x, { queue: "manual", limit: 10, defaultTimeoutMs: 60_000 })),
      ...(await canonicalEngine.claim(x, { queue: "dead", limit: 10, defaultTimeoutMs: 60_000 })),
    ]
    expect(claimed).toHaveLength(7)
    const refOf = (id: string | undefined) => {
      const job = claimed.find((c) => c.id === id)
      if (job === undefined) throw new Error(`job ${id} was not claimed`)
      return { id: job.id, runLease: job.runLease }
    }
    const boom = { kind: "error" as const, message: "failed by the operator's script" }
    await canonicalEngine.fail(
      x,
      [failedThenRetried, failedForGood, deadThenRetried, deadForGood].map((id) => ({
        ref: refOf(id),
        attempt: 1,
        error: boom,
      })),
    )
    await canonicalEngine.retry(
      x,
      retryable.map((id) => ({ ref: refOf(id), attempt: 1, delayMs: 2_000, error: boom })),
    )
    expect_(failedThenRetried!, ["completed"]) // retried by the operator while mixed
    expect_(failedForGood!, ["failed"])
    expect_(deadThenRetried!, ["completed"]) // retried from the DLQ while mixed
    expect_(deadForGood!, ["dead_lettered"])
    // Scheduled: soon (due while mixed) and next month (moved to queue storage by maintenance, still waiting).
    for (const k of [0, 1])
      await enqueue("ok", 930 + k, { runAt: new Date(Date.now() + 2_000), unique: true })
    const nextMonth = await enqueue("ok", 940, {
      runAt: new Date(Date.now() + 30 * 86_400_000),
      unique: true,
    })
    expect_(nextMonth!, ["scheduled"])
    // Running while the state moves: slow first attempts, some of which then retry or snooze (in mixed).
    const slow: Array<string> = []
    for (const script of ["slow", "slow", "slow-flaky", "slow-flaky", "slow-snooze"] as const)
      slow.push((await enqueue(script, slow.length, { priority: 1 }))!)
    // Available while the state moves: a paused queue's backlog, resumed once mixed.
    expect((await cli("queue", "pause", "backlog")).code).toBe(ExitCode.ok)
    for (let k = 0; k < 40; k++)
      await enqueue(k % 4 === 0 ? "flaky" : "ok", k, { queue: "backlog", unique: k < 10 })
    // Unique keys 0..9 of script ok are held from the start; producers collide with them.
    for (let k = 0; k < 10; k++) await enqueue("ok", k, { unique: true })
    const seeded = new Set(expected.keys())

    // --- Two real workers. ---
    const workers = ["rehearsal-a", "rehearsal-b"].map((id) => {
      const env: Record<string, string | undefined> = { ...process.env, DATABASE_URL: url }
      delete env.AWA_ENGINE
      const child = spawn(
        process.execPath,
        [
          bin,
          "worker",
          "--tasks",
          fixture,
          "--id",
          id,
          "--stats-interval",
          "0",
          "--poll-interval",
          "100ms",
          ...["default", "manual", "dead", "backlog"].flatMap((q) => ["--queue", q]),
        ],
        { env },
      )
      return { child, w: watch(child) }
    })
    try {
      for (const { w } of workers) await w.line(/awa worker rehearsal-[ab] started/, "its start line")
      await until("the slow jobs to run", async () => {
        const r = await pool.query(
          "SELECT count(*)::int AS n FROM awa.jobs WHERE state = 'running' AND id = ANY ($1)",
          [slow],
        )
        return r.rows[0].n === slow.length
      })

      // --- Producers and the invariant checker run for the whole move. ---
      const violations: Array<string> = []
      let phase = "canonical"
      let running = true
      const scripts: ReadonlyArray<Script> = ["ok", "flaky", "snooze", "doomed"]
      const produce = async (p: number) => {
        for (let i = 0; running; i++) {
          await enqueue("ok", (i * 7 + p) % 30, { unique: true }) // keys collide across producers and with seeds
          const script = scripts[(i + p) % scripts.length]!
          await enqueue(script, 10_000 * (p + 1) + i, { queue: i % 3 === 0 ? "dead" : "default" })
          await sleep(15)
        }
      }
      let checks = 0
      const check = async () => {
        while (running) {
          const found = [
            ...(await checkUniqueHolders(pool)),
            ...checkNoJobLost(await readJobPlaces(pool), new Map()), // none in two places
          ]
          for (const v of found) violations.push(`${phase}: ${v}`)
          checks++
          await sleep(50)
        }
      }
      const background = [produce(0), produce(1), check()]

      await sleep(300)
      // --- prepare -> enter-mixed, then finalize refused while the canonical backlog is not drained. ---
      phase = "prepare"
      const prepared = await cli("storage", "prepare")
      expect(prepared.code, prepared.stderr).toBe(ExitCode.ok)
      phase = "enter-mixed"
      const mixed = await cli("storage", "enter-mixed")
      expect(mixed.code, mixed.stderr).toBe(ExitCode.ok)
      phase = "mixed"
      const refused = await cli("storage", "finalize")
      expect(refused.code).toBe(ExitCode.unsafe)
      expect(refused.stderr).toContain("refused by the canonical-backlog gate")
      expect(refused.stderr).toMatch(/\d+ canonical job\(s\) are not finished yet/)
      expect(JSON.parse((await cli("storage", "status", "--json")).stdout).state).toBe("mixed")

      // Operators repair while mixed: a failed canonical job and a canonical DLQ entry are retried.
      const retried = await cli("job", "retry", failedThenRetried!)
      expect(retried.code, retried.stderr).toBe(ExitCode.ok)
      const fromDlq = await cli("dlq", "retry", deadThenRetried!)
      expect(fromDlq.code, fromDlq.stderr).toBe(ExitCode.ok)
      expect((await cli("queue", "resume", "backlog")).code).toBe(ExitCode.ok)

      // Refused again and again until the backlog is zero, then it passes.
      let refusals = 1
      for (;;) {
        const r = await cli("storage", "finalize")
        if (r.code === ExitCode.ok) break
        expect(r.code, r.stderr).toBe(ExitCode.unsafe)
        expect(r.stderr).toContain("canonical job(s) are not finished yet")
        refusals++
        await sleep(200)
      }
      phase = "active"
      const status = JSON.parse((await cli("storage", "status", "--json")).stdout)
      expect(status).toMatchObject({ state: "active", canonicalBacklog: 0 })
      await sleep(1_200) // producers follow the move (their cached state expires)
      running = false
      await Promise.all(background)

      // --- Every job ends where its script says; none completed twice; no unique key had two holders. ---
      let lastViolations: ReadonlyArray<string> = []
      await until(
        "every job to reach its end state",
        async () => {
          lastViolations = checkNoJobLost(await readJobPlaces(pool), expected)
          return lastViolations.length === 0
        },
        30_000,
      ).catch((e: unknown) => {
        throw new Error(`${(e as Error).message}:\n${lastViolations.join("\n")}`)
      })
      const completions = await pool.query<{ job_id: string }>(
        "SELECT job_id::text FROM rehearsal.events WHERE event = 'completed'",
      )
      assertStorageInvariants(
        violations,
        checkCompletedOnce(
          completions.rows.map((r) => r.job_id),
          mustComplete,
        ),
        await checkUniqueHolders(pool),
      )
      // The canonical attempts that retried or snoozed while mixed continued in queue storage under their ids.
      const places = await readJobPlaces(pool)
      const engineOf = (id: string) => places.find((p) => p.id === id)?.engine
      for (const id of [...slow.slice(2), failedThenRetried!, deadThenRetried!, nextMonth!, ...retryable])
        expect(engineOf(id!), `job ${id}`).toBe("queue_storage")
      const retriedEvents = await pool.query<{ run_lease: string; event: string }>(
        "SELECT run_lease::text, event FROM rehearsal.events WHERE job_id = $1 ORDER BY at",
        [slow[2]],
      )
      expect(retriedEvents.rows.map((r) => [r.run_lease, r.event])).toEqual([
        ["1", "slow attempt done"],
        ["1", "retry"],
        ["2", "completed"],
      ])
      // What ran, for the report.
      console.info(
        `rehearsal: ${expected.size} jobs (${seeded.size} seeded in canonical), ${completions.rowCount} completions, ` +
          `${conflicts} unique conflicts, ${checks} invariant checks, finalize refused ${refusals} time(s)`,
      )
      expect(conflicts).toBeGreaterThan(0)
      expect(checks).toBeGreaterThan(10)
    } finally {
      for (const { child } of workers) child.kill("SIGTERM")
      for (const { w } of workers) expect(await w.exited).toBe(ExitCode.ok)
    }
  })
})
