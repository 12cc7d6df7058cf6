import { createHash } from "node:crypto"
import type { ResolvedUniqueOptions } from "@awa/model/InsertOptions"
import { canonicalJson } from "@awa/model/JobPayload"

/** What a unique key is computed from: the job's kind, queue, encoded args and run time. */
export interface UniqueKeyInput {
  /** Job kind (always part of the key). */
  readonly kind: string
  /** Queue (part of the key when `byQueue`). */
  readonly queue: string
  /** Encoded args as JSON text (part of the key, canonicalized, when `byArgs`). */
  readonly argsJson: string
  /** When the job runs: the start of its time bucket is part of the key when `periodMs` is set. */
  readonly runAtMs: number
}

/**
 * Computes a job's unique key: SHA-256 (hex) over the kind, optionally the queue, the args as canonical JSON
 * (object keys sorted, so key order never matters) and the start of the time bucket holding its run time.
 */
export const uniqueKey = (input: UniqueKeyInput, options: ResolvedUniqueOptions): string => {
  const parts: Record<string, unknown> = { k: input.kind }
  if (options.byQueue) parts.q = input.queue
  if (options.byArgs) parts.a = JSON.parse(input.argsJson)
  if (options.periodMs !== null) parts.b = Math.floor(input.runAtMs / options.periodMs) * options.periodMs
  return createHash("sha256").update(canonicalJson(parts)).digest("hex")
}
