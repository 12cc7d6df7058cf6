import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    // One Postgres per test run: DATABASE_URL when set, else a container, else an embedded server.
    globalSetup: ["@awa/testing/vitest/globalSetup"],
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
})
