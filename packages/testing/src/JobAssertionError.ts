/**
 * The error thrown by the job assertions (`expectInserted` and friends) when the jobs found are not the
 * jobs expected.
 */
import type { Job } from "@awa/runtime/Engine"

/**
 * A failed job assertion. Its message names the assertion, shows what was expected and lists the jobs
 * actually found, each with the fields that did not match; `expectation` and `found` carry the same
 * information as data.
 */
export class JobAssertionError extends Error {
  /** The assertion that failed, e.g. `expectInserted`. */
  readonly assertion: string
  /** What was expected, as given to the assertion. */
  readonly expectation: unknown
  /** The jobs the assertion looked at. */
  readonly found: ReadonlyArray<Job>

  constructor(assertion: string, message: string, expectation: unknown, found: ReadonlyArray<Job>) {
    super(message)
    this.name = "JobAssertionError"
    this.assertion = assertion
    this.expectation = expectation
    this.found = found
  }
}
