import { awaVitestConfig } from "../../vitest.shared.js"

// @awa/model has no I/O: its tests need no Postgres server.
export default awaVitestConfig(import.meta.dirname, { postgres: false })
