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

const editDistance = (a: string, b: string): number => {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i)
  for (let i = 1; i <= a.length; i++) {
    const current = [i]
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      current[j] = Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, (previous[j - 1] ?? 0) + cost)
    }
    previous = current
  }
  return previous[b.length] ?? 0
}
