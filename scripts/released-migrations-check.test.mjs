// Unit tests of released-migrations-check's comparison (node --test).
import assert from "node:assert/strict"
import { test } from "node:test"
import { compareReleasedMigrations } from "./released-migrations-check.mjs"

const released = {
  canonical: [
    { file: "0001_core.sql", sql: "CREATE TABLE awa.a ();" },
    { file: "0002_more.sql", sql: "CREATE TABLE awa.b ();" },
  ],
}

test("new files after the released ones pass", () => {
  const current = {
    canonical: [...released.canonical, { file: "0003_next.sql", sql: "CREATE TABLE awa.c ();" }],
    pgmq: [{ file: "0001_new_set.sql", sql: "SELECT 1;" }],
  }
  assert.deepEqual(compareReleasedMigrations(released, current, "r"), [])
})

test("an edited released file is refused, with what to do", () => {
  const current = {
    canonical: [released.canonical[0], { file: "0002_more.sql", sql: "CREATE TABLE awa.b (x int);" }],
  }
  const problems = compareReleasedMigrations(released, current, "@awa/migrator@0.1.0")
  assert.equal(problems.length, 1)
  assert.match(
    problems[0],
    /0002_more\.sql differs from @awa\/migrator@0\.1\.0: released migrations are immutable/,
  )
  assert.match(problems[0], /new migration file/)
})

test("a removed released file or set, and a new file sorted among released ones, are refused", () => {
  const current = {
    canonical: [released.canonical[0], { file: "0001b_wedged.sql", sql: "SELECT 1;" }],
  }
  const problems = compareReleasedMigrations(
    { ...released, pgmq: [{ file: "0001_x.sql", sql: "" }] },
    current,
    "r",
  )
  assert.equal(problems.length, 3)
  assert.ok(problems.some((p) => /0002_more\.sql was released in r and is gone/.test(p)))
  assert.ok(problems.some((p) => /0001b_wedged\.sql is new but sorts before 0002_more\.sql/.test(p)))
  assert.ok(problems.some((p) => /migration set pgmq of r is gone/.test(p)))
})
