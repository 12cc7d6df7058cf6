import { Result, Schema } from "effect"
import { describe, expect, it } from "vitest"
import { defineJob, validateJobKind } from "../src/JobDefinition.js"
import {
  InvalidInsertOptions,
  InvalidJobArgs,
  InvalidJobDefinition,
  JobPayloadNotSerializable,
} from "../src/JobErrors.js"

const Email = defineJob({
  kind: "send_email",
  args: Schema.Struct({ to: Schema.String, n: Schema.Int }),
  queue: "mail",
})

describe("defineJob", () => {
  it("encodes valid args to JSON text", () => {
    expect(Email.encodeArgs({ to: "a@b", n: 1 })).toBe('{"to":"a@b","n":1}')
  })

  it("rejects args that fail the schema with InvalidJobArgs (phase insert)", () => {
    const err = Email.encodeArgs({ to: 5, n: 1 } as never)
    expect(err).toBeInstanceOf(InvalidJobArgs)
    expect((err as InvalidJobArgs).phase).toBe("insert")
    expect((err as InvalidJobArgs).message).toContain("send_email")
  })

  it("decodes stored args and reports mismatches with phase work", () => {
    expect(Result.getOrThrow(Email.decodeArgs({ to: "x", n: 2 }))).toEqual({ to: "x", n: 2 })
    const bad = Email.decodeArgs({ to: "x" })
    expect(Result.isFailure(bad)).toBe(true)
    if (Result.isFailure(bad)) expect(bad.failure.phase).toBe("work")
  })

  it("uses the schema's encoding so codecs round-trip", () => {
    const At = defineJob({ kind: "at", args: Schema.Struct({ at: Schema.DateFromString }) })
    const text = At.encodeArgs({ at: new Date("2024-01-01T00:00:00Z") })
    expect(text).toBe('{"at":"2024-01-01T00:00:00.000Z"}')
    const back = At.decodeArgs(JSON.parse(text as string))
    expect(Result.isSuccess(back) && back.success.at instanceof Date).toBe(true)
  })

  it("refuses values JSON would silently change", () => {
    const Any = defineJob({ kind: "any", args: Schema.Unknown })
    for (const value of [{ a: 1n }, { a: Number.NaN }, { d: new Date() }, [() => 1], { s: "a\u0000b" }]) {
      expect(Any.encodeArgs(value)).toBeInstanceOf(JobPayloadNotSerializable)
    }
    const cyclic: Record<string, unknown> = {}
    cyclic.self = cyclic
    const err = Any.encodeArgs(cyclic) as JobPayloadNotSerializable
    expect(err.path).toBe("args.self")
    expect(err.message).toContain("cycle")
  })

  it("throws InvalidJobDefinition for bad kinds and InvalidInsertOptions for bad defaults", () => {
    expect(() => defineJob({ kind: "", args: Schema.Unknown })).toThrow(InvalidJobDefinition)
    expect(() => defineJob({ kind: "has space", args: Schema.Unknown })).toThrow(InvalidJobDefinition)
    expect(() => defineJob({ kind: "k".repeat(129), args: Schema.Unknown })).toThrow(/at most 128/)
    expect(() => defineJob({ kind: "ok", args: Schema.Unknown, priority: 9 })).toThrow(InvalidInsertOptions)
    expect(validateJobKind("a.b:c/d-e_f")).toBe("a.b:c/d-e_f")
  })
})
