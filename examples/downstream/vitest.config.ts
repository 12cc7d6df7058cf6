import { defineConfig } from "vitest/config"

// vitest 5 prints failures with Map.groupBy, which Node 20 lacks; this keeps failure reports readable there.
if (typeof (Map as { groupBy?: unknown }).groupBy !== "function") {
  Object.defineProperty(Map, "groupBy", {
    configurable: true,
    writable: true,
    value: <K, T>(items: Iterable<T>, key: (item: T, index: number) => K): Map<K, Array<T>> => {
      const groups = new Map<K, Array<T>>()
      let index = 0
      for (const item of items) {
        const k = key(item, index++)
        groups.set(k, [...(groups.get(k) ?? []), item])
      }
      return groups
    },
  })
}

export default defineConfig({
  test: {
    // One Postgres per test run: DATABASE_URL when set, else a container, else an embedded server.
    globalSetup: ["@awa/testing/vitest/globalSetup"],
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
})
