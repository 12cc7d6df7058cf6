/**
 * Returns the candidate closest to `input` by edit distance when it is close enough to be a likely
 * typo (at most a third of the longer word, and at most 3 edits), for "did you mean" messages.
 */
export const closestMatch = (input: string, candidates: ReadonlyArray<string>): string | undefined => {
  let best: string | undefined
  let bestDistance = Number.POSITIVE_INFINITY
  for (const candidate of candidates) {
    const d = editDistance(input.toLowerCase(), candidate.toLowerCase())
    if (d < bestDistance) {
      bestDistance = d
      best = candidate
    }
  }
  if (best === undefined) return undefined
  const limit = Math.min(3, Math.max(1, Math.floor(Math.max(input.length, best.length) / 3)))
  return bestDistance <= limit ? best : undefined
}

// Optimal string alignment distance: insertions, deletions, substitutions and swaps of two adjacent
// characters each cost 1, so the common typo "lsit" is one edit from "list".
const editDistance = (a: string, b: string): number => {
  const rows: Array<Array<number>> = [Array.from({ length: b.length + 1 }, (_, j) => j)]
  for (let i = 1; i <= a.length; i++) {
    const row = [i]
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      const above = rows[i - 1]!
      let d = Math.min(above[j]! + 1, row[j - 1]! + 1, above[j - 1]! + cost)
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        d = Math.min(d, rows[i - 2]![j - 2]! + 1)
      row[j] = d
    }
    rows.push(row)
  }
  return rows[a.length]![b.length]!
}
