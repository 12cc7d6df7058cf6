// The marker rules of the docs check (scripts/docs-blocks.mjs). Run: node --test scripts/docs-blocks.test.mjs
import assert from "node:assert/strict"
import { test } from "node:test"
import { findBlocks, parseMarker } from "./docs-blocks.mjs"

const fence = "```"

test("a block without a marker is reported with its line", () => {
  const [block] = findBlocks(`# Title\n\nSome text.\n\n${fence}sh\nnpm test\n${fence}\n`)
  assert.equal(block.line, 5)
  assert.equal(block.problem, "has no marker")
})

test("the marker is the last non-blank line before the fence", () => {
  const blocks = findBlocks(
    `<!-- run -->\n\n${fence}sh\necho hi\n${fence}\n\n<!-- skip: a synopsis -->\n${fence}ts\nx\n${fence}\n`,
  )
  assert.deepEqual(
    blocks.map((b) => [b.line, b.marker?.kind, b.problem]),
    [
      [3, "run", undefined],
      [8, "skip", undefined],
    ],
  )
  assert.equal(blocks[0].code, "echo hi")
  assert.equal(blocks[1].marker.reason, "a synopsis")
})

test("a marker two paragraphs up does not count", () => {
  const [block] = findBlocks(`<!-- run -->\n\nA paragraph in between.\n\n${fence}sh\necho hi\n${fence}\n`)
  assert.equal(block.problem, "has no marker")
})

test("file= quotes need no marker; other HTML comments are not markers", () => {
  const blocks = findBlocks(
    `${fence}ts file=examples/a.ts\nx\n${fence}\n\n<!-- a note -->\n${fence}js\ny\n${fence}\n`,
  )
  assert.equal(blocks[0].file, "examples/a.ts")
  assert.equal(blocks[0].problem, undefined)
  assert.equal(blocks[1].problem, "has no marker")
})

test("malformed markers and markers on the wrong language are refused with a reason", () => {
  assert.match(parseMarker("<!-- skip -->").error, /needs a reason/)
  assert.match(parseMarker("<!-- skip: -->").error, /needs a reason/)
  assert.match(parseMarker("<!-- run: now -->").error, /takes no argument/)
  assert.match(parseMarker("<!-- run-until: ( -->").error, /not a regular expression/)
  assert.match(parseMarker("<!-- save: ../x.ts -->").error, /relative path inside the project/)
  assert.match(parseMarker("<!-- save: /etc/x -->").error, /relative path inside the project/)
  assert.equal(parseMarker("<!-- not a marker -->"), undefined)
  assert.equal(parseMarker("text"), undefined)
  const wrong = (marker, lang) => findBlocks(`${marker}\n${fence}${lang}\nx\n${fence}\n`)[0].problem
  assert.match(wrong("<!-- run -->", "text"), /cannot run: only sh, ts, js and sql blocks can/)
  assert.match(wrong("<!-- run-until: x -->", "ts"), /for sh blocks/)
  assert.match(wrong("<!-- typecheck -->", "js"), /for ts blocks/)
  assert.equal(wrong("<!-- save: tsconfig.json -->", "json"), undefined)
})

test("longer fences and tildes close only on a matching fence", () => {
  const text = `<!-- skip: shows a fence -->\n${fence}\`md\n${fence}sh\ninner\n${fence}\n${fence}\`\n\n<!-- skip: tildes -->\n~~~sh\na\n~~~\n`
  const blocks = findBlocks(text)
  assert.equal(blocks.length, 2)
  assert.equal(blocks[0].code, `${fence}sh\ninner\n${fence}`)
  assert.equal(blocks[1].code, "a")
})

test("run-until keeps its pattern", () => {
  const marker = parseMarker("<!-- run-until: awa worker \\S+ started -->")
  assert.equal(marker.kind, "run-until")
  assert.ok(marker.pattern.test("awa worker vm:1:2 started: queues email"))
})
