import { describe, expect, it } from "vitest"
import { uniqueKey } from "../src/UniqueKey.js"

const options = { byQueue: false, byArgs: true, periodMs: null, states: ["available" as const] }
const input = { kind: "k", queue: "q", argsJson: '{"a":1,"b":[1,{"y":2,"x":1}]}', runAtMs: 0 }

describe("uniqueKey", () => {
  it("ignores object key order in args", () => {
    expect(uniqueKey(input, options)).toBe(
      uniqueKey({ ...input, argsJson: '{"b":[1,{"x":1,"y":2}],"a":1}' }, options),
    )
    expect(uniqueKey(input, options)).toMatch(/^[0-9a-f]{64}$/)
  })

  it("includes exactly the parts the options name", () => {
    const other = { ...input, queue: "r", argsJson: '{"a":2}' }
    expect(uniqueKey(input, options)).not.toBe(uniqueKey(other, options))
    expect(uniqueKey(input, { ...options, byArgs: false })).toBe(
      uniqueKey(other, { ...options, byArgs: false }),
    )
    expect(uniqueKey(input, { ...options, byArgs: false, byQueue: true })).not.toBe(
      uniqueKey(other, { ...options, byArgs: false, byQueue: true }),
    )
  })

  it("buckets by period", () => {
    const hourly = { ...options, periodMs: 3_600_000 }
    expect(uniqueKey({ ...input, runAtMs: 10 }, hourly)).toBe(
      uniqueKey({ ...input, runAtMs: 3_599_999 }, hourly),
    )
    expect(uniqueKey({ ...input, runAtMs: 10 }, hourly)).not.toBe(
      uniqueKey({ ...input, runAtMs: 3_600_000 }, hourly),
    )
  })
})
