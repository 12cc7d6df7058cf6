/**
 * A one-line guard for tests that assert one engine's mechanics (table layout, vacuum behaviour, ...)
 * rather than the engine-invariant contract: under any other engine the test is skipped, with the reason
 * shown in the report. Use it only for engine mismatches, never to hide a failure.
 */
import type { EngineName } from "@awa/runtime/Engine"
import { it } from "vitest"
import type { TestEnvironment } from "../PostgresServer.js"
import { testEngineFromEnv } from "../TestEngine.js"

/** The part of vitest's test context the guard needs (`ctx.skip(condition, note)`). */
export interface SkippableContext {
  /** vitest's `ctx.skip`: skips the rest of the test, with a note, when `condition` is true. */
  readonly skip: (condition: boolean, note?: string) => void
}

const enginesOf = (engines: EngineName | ReadonlyArray<EngineName>): ReadonlyArray<EngineName> =>
  typeof engines === "string" ? [engines] : engines

/** The note shown for a test skipped because it is specific to other engines. */
export const engineSkipNote = (
  engines: EngineName | ReadonlyArray<EngineName>,
  reason: string,
  current: EngineName,
): string => `engine-specific (${enginesOf(engines).join(", ")} only, running ${current}): ${reason}`

/**
 * Skips the rest of the current test unless the engine under test (`AWA_TEST_ENGINE`, default canonical)
 * is one of `engines`, with a note naming the engines and `reason`. Call it first in the test:
 *
 * ```ts
 * it("keeps the job row's dead tuples bounded", (ctx) => {
 *   onlyOnEngine(ctx, "canonical", "inspects awa.jobs")
 *   ...
 * })
 * ```
 */
export const onlyOnEngine = (
  ctx: SkippableContext,
  engines: EngineName | ReadonlyArray<EngineName>,
  reason: string,
  env: TestEnvironment = process.env,
): void => {
  const current = testEngineFromEnv(env)
  ctx.skip(!enginesOf(engines).includes(current), engineSkipNote(engines, reason, current))
}

/**
 * Registers a test that runs only under the given engines and is skipped under the others; the engines and
 * `reason` are part of its title, so the report shows why it was skipped:
 * `itOnEngine("canonical", "inspects awa.jobs", "keeps dead tuples bounded", async () => { ... })`.
 */
export const itOnEngine = (
  engines: EngineName | ReadonlyArray<EngineName>,
  reason: string,
  title: string,
  fn: () => unknown,
  env: TestEnvironment = process.env,
): void => {
  const current = testEngineFromEnv(env)
  it.skipIf(!enginesOf(engines).includes(current))(
    `${title} [${enginesOf(engines).join(", ")} only: ${reason}]`,
    async () => {
      await fn()
    },
  )
}
