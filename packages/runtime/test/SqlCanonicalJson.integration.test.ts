// Parity of the SQL producer's unique keys with the TypeScript producer's: awa.canonical_json (migration
// canonical/0004) against @awa/model's canonicalJson, and awa.unique_key against UniqueKey.uniqueKey, over
// generated JSON texts written with every number spelling, escape and Unicode range JSON allows (jsonb's
// own text is not canonical JSON, so the SQL side has its own serializer). A seeded generator makes a
// failure reproducible; the seed is printed in the failure message.
import type { ResolvedUniqueOptions } from "@awa/model/InsertOptions"
import { canonicalJson } from "@awa/model/JobPayload"
import { defaultUniqueStates } from "@awa/model/JobState"
import { describe, expect, it } from "vitest"
import { uniqueKey } from "../src/UniqueKey.js"
import { useAwaDatabase } from "./support/awaDatabase.js"

const db = useAwaDatabase()

// mulberry32: a small seeded PRNG, so every run checks the same values and a failure can be replayed.
const prng = (seed: number) => {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

// Number spellings that JSON allows and that JavaScript and jsonb read differently from how they print.
const fixedNumbers = [
  "0",
  "-0",
  "0.0",
  "-0.0",
  "1",
  "1.0",
  "1.50",
  "-1",
  "1e21",
  "1E21",
  "1e+21",
  "1e20",
  "123456789012345678901",
  "1e-7",
  "1e-6",
  "0.000001",
  "0.0000001",
  "1e-5",
  "12345678901234567890",
  "9007199254740993",
  "9007199254740992",
  "0.1",
  "0.30000000000000004",
  "100",
  "1e2",
  "5e-324",
  "2.4703282292062328e-324",
  "1.7976931348623157e308",
  "123e-20",
  "1.2345678901234567e300",
  "-2.5e-8",
  "999999999999999",
  "1000000000000000",
  "4.35",
  "1e16",
  "123456789.123456789",
  "0.5",
  "-1e21",
  "1.7976931348623158e308",
  "1e-320",
]

// Characters worth mixing into strings and keys: escapes, controls, BMP, private use (U+E000..), BMP above
// the surrogates, astral (surrogate pairs in UTF-16, where UTF-16 and code point order differ).
const chars = [
  "a",
  "b",
  "Z",
  "0",
  " ",
  '"',
  "\\",
  "/",
  "\n",
  "\r",
  "\t",
  "\b",
  "\f",
  "\u0001",
  "\u001f",
  "\u007f",
  "é",
  "ß",
  "\u00a0",
  "\u2028",
  "\u2029",
  "中",
  "\ud7ff",
  "\ue000",
  "\uf8ff",
  "\uffef",
  "\ufffd",
  "😀",
  "𝄞",
  "\u{10ffff}",
  "\u{10000}",
  "ﬀ",
]

const generate = (random: () => number) => {
  const pick = <T>(xs: ReadonlyArray<T>): T => xs[Math.floor(random() * xs.length)]!
  const string = (): string => {
    const n = Math.floor(random() * 6)
    let s = ""
    for (let i = 0; i < n; i++) s += pick(chars)
    return s
  }
  // A JSON string literal: JSON.stringify's form, or with every non-ASCII character as a \u escape.
  const stringText = (s: string): string =>
    random() < 0.5
      ? JSON.stringify(s)
      : JSON.stringify(s).replace(/[^\x20-\x7e]/gu, (c) =>
          [...c].length === 1 && c.length === 2
            ? `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}\\u${c.charCodeAt(1).toString(16).padStart(4, "0")}`
            : `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
        )
  const numberText = (): string => {
    const r = random()
    if (r < 0.3) return pick(fixedNumbers)
    if (r < 0.5) return String(Math.floor((random() - 0.5) * 2 ** 40))
    if (r < 0.7) return String((random() - 0.5) * 10 ** Math.floor(random() * 60 - 30))
    if (r < 0.85) return (random() * 1000).toFixed(Math.floor(random() * 8))
    return `${Math.floor(random() * 1000)}e${Math.floor(random() * 40 - 20)}`
  }
  const value = (depth: number): string => {
    const r = random()
    if (depth > 3 || r < 0.3) {
      const s = random()
      if (s < 0.4) return numberText()
      if (s < 0.8) return stringText(string())
      return pick(["true", "false", "null"])
    }
    if (r < 0.6) {
      const n = Math.floor(random() * 5)
      return `[${Array.from({ length: n }, () => value(depth + 1)).join(random() < 0.5 ? "," : " , ")}]`
    }
    const n = Math.floor(random() * 6)
    // Duplicate keys happen: both JSON.parse and jsonb keep the last one.
    const keys = Array.from({ length: n }, () => string())
    return `{${keys.map((k) => `${stringText(k)}:${value(depth + 1)}`).join(random() < 0.5 ? "," : ", ")}}`
  }
  return value(0)
}

describe("awa.canonical_json and awa.unique_key match the TypeScript producer byte for byte", () => {
  it("over generated JSON values (numbers, escapes, Unicode, nesting, key order)", async () => {
    const seed = 20261130
    const random = prng(seed)
    const texts = [...fixedNumbers, ...fixedNumbers.map((n) => `{"n":${n},"a":[${n}]}`)]
    for (let i = 0; i < 3000; i++) texts.push(generate(random))
    const { rows } = await db.pool.query<{ ord: string; canonical: string }>(
      `SELECT t.ord, awa.canonical_json(t.text::jsonb) AS canonical
       FROM unnest($1::text[]) WITH ORDINALITY AS t(text, ord) ORDER BY t.ord`,
      [texts],
    )
    expect(rows).toHaveLength(texts.length)
    const mismatches = rows
      .map((row, i) => ({ text: texts[i]!, sql: row.canonical, ts: canonicalJson(JSON.parse(texts[i]!)) }))
      .filter((m) => m.sql !== m.ts)
    expect(mismatches.slice(0, 5), `seed ${seed}`).toEqual([])
  })

  it("over doubles from random bit patterns, each written three ways", async () => {
    const random = prng(11)
    const view = new DataView(new ArrayBuffer(8))
    const texts: Array<string> = []
    while (texts.length < 6000) {
      view.setUint32(0, Math.floor(random() * 2 ** 32))
      view.setUint32(4, Math.floor(random() * 2 ** 32))
      const x = view.getFloat64(0)
      if (!Number.isFinite(x)) continue
      texts.push(String(x), x.toExponential(20).replace("e+", "e"), x.toPrecision(17))
    }
    const { rows } = await db.pool.query<{ canonical: string }>(
      `SELECT awa.canonical_json(t.text::jsonb) AS canonical
       FROM unnest($1::text[]) WITH ORDINALITY AS t(text, ord) ORDER BY t.ord`,
      [texts],
    )
    const mismatches = rows
      .map((row, i) => ({ text: texts[i]!, sql: row.canonical, ts: canonicalJson(JSON.parse(texts[i]!)) }))
      .filter((m) => m.sql !== m.ts)
    expect(mismatches.slice(0, 5)).toEqual([])
  })

  it("unique keys agree for every combination of unique options", async () => {
    const random = prng(7)
    const cases = Array.from({ length: 300 }, (_, i) => {
      const args = generate(random)
      const options: ResolvedUniqueOptions = {
        byQueue: random() < 0.5,
        byArgs: random() < 0.7,
        periodMs: random() < 0.5 ? null : [1, 1000, 60_000, 3_600_000, 86_400_000, 7][i % 6]!,
        states: defaultUniqueStates,
      }
      const kind = `kind.${i % 7}`
      const queue = ["default", "q:1", "Ünicode-no", "x"][i % 4]!
      const runAtMs = 1_700_000_000_000 + Math.floor(random() * 10 ** 10)
      return { kind, queue, args, options, runAtMs }
    })
    const { rows } = await db.pool.query<{ key: string }>(
      `SELECT awa.unique_key(c.kind, c.queue, c.args::jsonb, 'epoch'::timestamptz + c.ms * interval '1 millisecond',
         c.by_queue, c.by_args, c.period) AS key
       FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::boolean[], $6::boolean[], $7::bigint[])
         WITH ORDINALITY AS c(kind, queue, args, ms, by_queue, by_args, period, ord)
       ORDER BY c.ord`,
      [
        cases.map((c) => c.kind),
        cases.map((c) => c.queue),
        cases.map((c) => c.args),
        cases.map((c) => c.runAtMs),
        cases.map((c) => c.options.byQueue),
        cases.map((c) => c.options.byArgs),
        cases.map((c) => c.options.periodMs),
      ],
    )
    const mismatches = cases
      .map((c, i) => ({
        ...c,
        sql: rows[i]?.key,
        ts: uniqueKey({ kind: c.kind, queue: c.queue, argsJson: c.args, runAtMs: c.runAtMs }, c.options),
      }))
      .filter((m) => m.sql !== m.ts)
    expect(mismatches.slice(0, 3)).toEqual([])
  })
})
