import { JobPayloadNotSerializable, JobPayloadTooLarge } from "./JobErrors.js"

/** Which part of a job a payload is: its args or its metadata. */
export type JobPayloadField = "args" | "metadata"

interface PayloadProblem {
  readonly path: string
  readonly reason: string
}

const describe = (value: unknown): string => {
  if (value === null) return "null"
  if (typeof value !== "object") return typeof value
  const name = Object.getPrototypeOf(value)?.constructor?.name
  return typeof name === "string" && name.length > 0
    ? `a ${name} instance`
    : "an object with a custom prototype"
}

const isPlainObject = (value: object): boolean => {
  const proto = Object.getPrototypeOf(value)
  return proto === Object.prototype || proto === null
}

// In a `u` regex a surrogate pair is one code point, so \p{Cs} matches only lone surrogates.
const loneSurrogate = /\p{Cs}/u

// Walks a value and returns the first place where it is not plain JSON that Postgres's jsonb accepts.
// JSON.stringify alone would silently turn NaN into null, drop functions and call Date#toJSON, so a
// value read back at work time would differ from the one inserted.
const findProblem = (value: unknown, path: string, seen: Set<object>): PayloadProblem | undefined => {
  switch (typeof value) {
    case "string":
      if (value.includes("\u0000"))
        return { path, reason: "a string contains the NUL character, which jsonb rejects" }
      if (loneSurrogate.test(value)) return { path, reason: "a string contains a lone UTF-16 surrogate" }
      return undefined
    case "boolean":
      return undefined
    case "number":
      return Number.isFinite(value) ? undefined : { path, reason: `the number ${value} has no JSON form` }
    case "bigint":
      return { path, reason: "a bigint has no JSON form; encode it as a string" }
    case "undefined":
      return { path, reason: "undefined has no JSON form; omit the property or use null" }
    case "function":
    case "symbol":
      return { path, reason: `a ${typeof value} has no JSON form` }
  }
  if (value === null) return undefined
  const obj = value as object
  if (seen.has(obj)) return { path, reason: "the value contains a reference cycle" }
  seen.add(obj)
  try {
    if (Array.isArray(obj)) {
      for (let i = 0; i < obj.length; i++) {
        const problem = findProblem(obj[i], `${path}[${i}]`, seen)
        if (problem !== undefined) return problem
      }
      return undefined
    }
    if (!isPlainObject(obj)) return { path, reason: `${describe(obj)} is not a plain JSON object` }
    for (const key of Object.keys(obj)) {
      const child = (obj as Record<string, unknown>)[key]
      // An undefined property is dropped by JSON, exactly like an absent optional field: allowed.
      if (child === undefined) continue
      if (key.includes("\u0000")) return { path, reason: "a property name contains the NUL character" }
      const problem = findProblem(child, `${path}.${key}`, seen)
      if (problem !== undefined) return problem
    }
    if (Object.getOwnPropertySymbols(obj).length > 0) {
      return { path, reason: "the object has symbol-keyed properties, which JSON drops" }
    }
    return undefined
  } finally {
    seen.delete(obj)
  }
}

/**
 * Checks that `value` is plain JSON that jsonb stores without loss and serializes it, or returns the typed
 * error that says where it is not (or that it is over `limitBytes`).
 */
export const serializeJobPayload = (
  kind: string,
  field: JobPayloadField,
  value: unknown,
  limitBytes: number,
): string | JobPayloadNotSerializable | JobPayloadTooLarge => {
  const root = field === "args" ? "args" : "metadata"
  const problem = findProblem(value, root, new Set())
  if (problem !== undefined) {
    return new JobPayloadNotSerializable({ kind, field, path: problem.path, reason: problem.reason })
  }
  const text = JSON.stringify(value)
  // Most payloads are far below the limit; only measure bytes when the UTF-16 length could exceed it.
  if (text.length * 3 > limitBytes) {
    const bytes = Buffer.byteLength(text, "utf8")
    if (bytes > limitBytes) return new JobPayloadTooLarge({ kind, field, bytes, limit: limitBytes })
  }
  return text
}

/**
 * Serializes a JSON value with object keys sorted at every level, so equal values give equal text
 * (used for unique keys). The value must already have passed `serializeJobPayload`.
 */
export const canonicalJson = (value: unknown): string => {
  if (value === null || typeof value !== "object") return JSON.stringify(value)
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v)).join(",")}]`
  const record = value as Record<string, unknown>
  const keys = Object.keys(record)
    .filter((k) => record[k] !== undefined)
    .sort()
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(record[k])}`).join(",")}}`
}
