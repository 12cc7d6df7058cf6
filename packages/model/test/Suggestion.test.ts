import { describe, expect, it } from "vitest"
import { closestMatch } from "../src/Suggestion.js"

describe("closestMatch", () => {
  const commands = ["list", "get", "retry", "cancel"]

  it("suggests the closest known word for typos: swapped, missing, extra or wrong letters", () => {
    expect(closestMatch("lsit", commands)).toBe("list")
    expect(closestMatch("retyr", commands)).toBe("retry")
    expect(closestMatch("cancl", commands)).toBe("cancel")
    expect(closestMatch("gett", commands)).toBe("get")
    expect(closestMatch("LIST", commands)).toBe("list")
    expect(closestMatch("canonicla", ["canonical", "queue-storage", "pgmq"])).toBe("canonical")
    expect(closestMatch("queue_storage", ["canonical", "queue-storage", "pgmq"])).toBe("queue-storage")
  })

  it("suggests nothing when no known word is close", () => {
    expect(closestMatch("purge", commands)).toBeUndefined()
    expect(closestMatch("x", commands)).toBeUndefined()
    expect(closestMatch("", commands)).toBeUndefined()
    expect(closestMatch("list", [])).toBeUndefined()
  })
})
