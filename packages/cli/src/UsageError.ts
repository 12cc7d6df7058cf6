import { closestMatch } from "@awa/model"
import { Data } from "effect"

/** A command line the `awa` binary cannot run: the message says what to type instead. */
export class UsageError extends Data.TaggedError("UsageError")<{ readonly reason: string }> {
  override get message(): string {
    return this.reason
  }
}

/** A `UsageError` for an unknown word, suggesting the closest known one. */
export const unknownWord = (what: string, word: string, known: ReadonlyArray<string>): UsageError => {
  const suggestion = closestMatch(word, known)
  return new UsageError({
    reason: `Unknown ${what} "${word}".${suggestion ? ` Did you mean "${suggestion}"?` : ""} Known: ${known.join(", ")}.`,
  })
}
