// @awa/testing depends on @awa/runtime, so runtime cannot list it in package.json (a dependency cycle).
// Its tests still use @awa/testing's Postgres provisioning: they import the sibling package's sources as
// `@awa/testing-src/<module>.js` through the alias the shared config adds (and `paths` in tsconfig.json).
import { awaVitestConfig } from "../../vitest.shared.js"

export default awaVitestConfig(import.meta.dirname, { aliasTesting: true })
