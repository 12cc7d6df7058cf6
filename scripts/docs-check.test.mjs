// What scripts/docs-check.mjs reports for unmarked blocks and stale quotes, without a database (--markers-only).
// Run: node --test scripts/docs-check.test.mjs
import assert from "node:assert/strict"
import { spawnSync } from "node:child_process"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { test } from "node:test"

const script = new URL("./docs-check.mjs", import.meta.url).pathname
const fence = "```"

const check = (markdown) => {
  const dir = mkdtempSync(join(tmpdir(), "awa-docs-test-"))
  try {
    const file = join(dir, "guide.md")
    writeFileSync(file, markdown)
    const result = spawnSync(process.execPath, [script, "--markers-only", file], { encoding: "utf8" })
    return { status: result.status, output: `${result.stdout}${result.stderr}` }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

test("an unmarked block fails the check, naming its file and line and the markers to choose from", () => {
  const { status, output } = check(
    `# Guide\n\n<!-- run -->\n${fence}sh\necho ok\n${fence}\n\n${fence}ts\nconst x = 1\n${fence}\n`,
  )
  assert.equal(status, 1)
  assert.match(
    output,
    /guide\.md:8: the ```ts block has no marker\. Put one of <!-- run -->, .*<!-- skip: REASON -->/,
  )
  assert.doesNotMatch(output, /guide\.md:4/)
})

test("a malformed marker fails with what is wrong", () => {
  const { status, output } = check(`<!-- skip -->\n${fence}sh\nnpm test\n${fence}\n`)
  assert.equal(status, 1)
  assert.match(output, /guide\.md:2: the ```sh block has a malformed marker \(skip needs a reason/)
})

test("a quote that differs from its file fails", () => {
  const { status, output } = check(`${fence}json file=package.json\n{}\n${fence}\n`)
  assert.equal(status, 1)
  assert.match(output, /guide\.md:1: quotes package\.json but differs from it/)
})

test("marked blocks pass", () => {
  const { status, output } = check(`<!-- skip: sample output -->\n${fence}text\nhello\n${fence}\n`)
  assert.equal(status, 0, output)
  assert.match(output, /1 code blocks in 1 files are marked/)
})
