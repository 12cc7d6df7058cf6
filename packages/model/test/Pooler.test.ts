import { describe, expect, it } from "vitest"
import {
  checkPoolerOption,
  InvalidPoolerMode,
  isTransactionPooler,
  PoolerConflict,
  parsePoolerMode,
} from "../src/Pooler.js"
import { classifySqlState } from "../src/SqlState.js"

describe("parsePoolerMode", () => {
  it("reads the three modes, case-insensitively and trimmed", () => {
    expect(parsePoolerMode("transaction", "--pooler")).toBe("transaction")
    expect(parsePoolerMode(" Session ", "AWA_POOLER")).toBe("session")
    expect(parsePoolerMode("NONE", "option pooler")).toBe("none")
  })

  it("treats unset and empty as not set", () => {
    expect(parsePoolerMode(undefined, "AWA_POOLER")).toBeUndefined()
    expect(parsePoolerMode("  ", "AWA_POOLER")).toBeUndefined()
  })

  it("refuses anything else, naming the value, its source and the accepted modes", () => {
    const error = parsePoolerMode("pgbouncer", "AWA_POOLER")
    expect(error).toBeInstanceOf(InvalidPoolerMode)
    expect((error as InvalidPoolerMode).message).toMatch(/"pgbouncer" \(from AWA_POOLER\).*"transaction"/)
    expect(parsePoolerMode(3, "option pooler")).toBeInstanceOf(InvalidPoolerMode)
  })
})

describe("isTransactionPooler / PoolerConflict", () => {
  it("only transaction pooling forbids session state", () => {
    expect(isTransactionPooler("transaction")).toBe(true)
    expect(isTransactionPooler("session")).toBe(false)
    expect(isTransactionPooler(undefined)).toBe(false)
  })

  it("says which setting conflicts and what to do", () => {
    const error = new PoolerConflict({ setting: "listen: true", reason: "r", fix: "Drop it." })
    expect(error.message).toBe('listen: true cannot be used with pooler "transaction": r. Drop it.')
  })
})

describe("classifySqlState for pooler symptoms", () => {
  it("names prepared-statement clashes, which a transaction pooler causes", () => {
    expect(classifySqlState("42P05")).toBe("prepared-statement")
    expect(classifySqlState("26000")).toBe("prepared-statement")
  })
})

describe("checkPoolerOption", () => {
  it("passes undefined and valid modes through and throws for anything else, naming the option", () => {
    expect(checkPoolerOption(undefined, "option pooler")).toBeUndefined()
    expect(checkPoolerOption("transaction", "option pooler")).toBe("transaction")
    expect(() => checkPoolerOption("", "makeAdmin option pooler")).toThrow(
      /"" \(from makeAdmin option pooler\)/,
    )
    expect(() => checkPoolerOption(true, "Worker option pooler")).toThrow(InvalidPoolerMode)
  })
})
