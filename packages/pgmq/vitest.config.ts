import { awaVitestConfig } from "../../vitest.shared.js"

export default awaVitestConfig(import.meta.dirname)
