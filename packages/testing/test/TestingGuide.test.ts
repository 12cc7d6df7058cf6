// docs/testing.md quotes the downstream example's files verbatim; this keeps the guide from drifting
// away from the code that CI actually installs and runs (scripts/example-check.mjs).
import { readFileSync } from "node:fs"
import path from "node:path"
import { expect, it } from "vitest"

const repoRoot = path.resolve(import.meta.dirname, "../../..")

it("quotes every example file exactly as it is", () => {
  const guide = readFileSync(path.join(repoRoot, "docs", "testing.md"), "utf8")
  const blocks = [...guide.matchAll(/^```ts file=(\S+)\n([\s\S]*?)^```$/gm)]
  expect(blocks.map((b) => b[1])).toEqual([
    "examples/downstream/vitest.config.ts",
    "examples/downstream/src/jobs.ts",
    "examples/downstream/src/app.ts",
    "examples/downstream/src/handlers.ts",
    "examples/downstream/test/app.test.ts",
  ])
  for (const [, file, quoted] of blocks) {
    expect(quoted, `docs/testing.md quotes ${file}; copy the file into the guide again`).toBe(
      readFileSync(path.join(repoRoot, file!), "utf8"),
    )
  }
})
