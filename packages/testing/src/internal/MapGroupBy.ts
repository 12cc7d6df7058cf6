/**
 * vitest 5's reporter calls `Map.groupBy` (Node >= 21) when it prints failures; on Node 20 it would crash
 * instead of showing them. Installed by the global setup (which runs in the main vitest process, where the
 * reporter runs), so downstream configs need nothing for it.
 */
export const installMapGroupBy = (): void => {
  if (typeof (Map as { groupBy?: unknown }).groupBy === "function") return
  Object.defineProperty(Map, "groupBy", {
    configurable: true,
    writable: true,
    value: <K, T>(items: Iterable<T>, key: (item: T, index: number) => K): Map<K, Array<T>> => {
      const groups = new Map<K, Array<T>>()
      let index = 0
      for (const item of items) {
        const k = key(item, index++)
        const group = groups.get(k)
        if (group) group.push(item)
        else groups.set(k, [item])
      }
      return groups
    },
  })
}
