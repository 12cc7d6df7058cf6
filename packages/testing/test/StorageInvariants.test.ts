import { InvalidIdentifier } from "@awa/model/MigratorError"
import { describe, expect, it } from "vitest"
import {
  assertStorageInvariants,
  checkCompletedOnce,
  checkNoJobLost,
  readJobPlaces,
  StorageInvariantViolation,
} from "../src/StorageInvariants.js"

describe("storage invariants", () => {
  it("finds jobs lost, in two places, or in a state their script does not allow", () => {
    const violations = checkNoJobLost(
      [
        { id: "1", engine: "canonical", state: "completed" },
        { id: "2", engine: "canonical", state: "running" },
        { id: "2", engine: "queue_storage", state: "retryable" },
        { id: "3", engine: "queue_storage", state: "failed" },
        { id: "5", engine: "canonical", state: "dead_lettered" },
      ],
      new Map([
        ["1", ["completed"]],
        ["3", ["completed"]],
        ["4", ["completed", "failed"]],
        ["5", ["dead_lettered"]],
      ]),
    )
    expect(violations).toEqual([
      "job 2 is in 2 places: canonical/running, queue_storage/retryable",
      "job 3 is queue_storage/failed, expected completed",
      "job 4 is lost: in neither engine nor any DLQ (expected completed or failed)",
    ])
  })

  it("finds jobs completed twice, never, or unexpectedly", () => {
    expect(checkCompletedOnce(["1", "2", "2", "9"], new Set(["1", "2", "3"]))).toEqual([
      "job 2 completed 2 times",
      "job 9 completed but was not expected to",
      "job 3 never completed",
    ])
    expect(checkCompletedOnce(["1", "7"], new Set(["1"]), new Set(["7"]))).toEqual([])
  })

  it("throws every violation at once, and nothing when there is none", () => {
    expect(() => assertStorageInvariants([], [])).not.toThrow()
    const thrown = (() => {
      try {
        assertStorageInvariants(["a"], ["b", "c"])
      } catch (e) {
        return e
      }
    })()
    expect(thrown).toBeInstanceOf(StorageInvariantViolation)
    expect((thrown as StorageInvariantViolation).violations).toEqual(["a", "b", "c"])
    expect((thrown as Error).message).toContain("storage invariants violated (3)")
  })

  it("refuses a schema name that is not a plain identifier before it reaches SQL", async () => {
    await expect(readJobPlaces({} as never, 'awa"; DROP TABLE x; --')).rejects.toBeInstanceOf(
      InvalidIdentifier,
    )
  })
})
