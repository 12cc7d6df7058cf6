/**
 * The error raised when the storage engine for tests cannot be chosen.
 */
import { Data } from "effect"

/**
 * A typed failure to choose the storage engine for tests: `AWA_TEST_ENGINE` (or an `engine` option)
 * names an engine that does not exist, or one that this version of awa does not implement yet. The
 * message lists the engines that can be used.
 */
export class TestEngineError extends Data.TaggedError("TestEngineError")<{
  /** The value that was given. */
  readonly engine: string
  /** Where it came from, e.g. `AWA_TEST_ENGINE`. */
  readonly source: string
  /** The engines that can be used. */
  readonly available: ReadonlyArray<string>
  readonly message: string
}> {}
