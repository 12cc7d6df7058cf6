// Unit tests of release-dry's checks on synthetic tarball listings and manifests (node --test). The whole
// script runs in .ci/run against the real tarballs; these prove each check fails on the problem it names.
import assert from "node:assert/strict"
import { test } from "node:test"
import { checkFileList, checkManifest, checkSourceMaps, resolveExports, satisfies } from "./release-dry.mjs"

const manifest = (overrides = {}) => ({
  name: "@awa/example",
  version: "0.1.0",
  description: "An example.",
  license: "MIT",
  type: "module",
  engines: { node: ">=20.11" },
  publishConfig: { access: "public" },
  files: ["dist", "src", "!**/*.tsbuildinfo"],
  main: "./dist/index.js",
  types: "./dist/index.d.ts",
  exports: {
    ".": { types: "./dist/index.d.ts", default: "./dist/index.js" },
    "./*": { types: "./dist/*.d.ts", default: "./dist/*.js" },
    "./internal/*": null,
    "./package.json": "./package.json",
  },
  ...overrides,
})
const root = { license: "MIT", engines: { node: ">=20.11" } }
const goodFiles = [
  "LICENSE",
  "README.md",
  "package.json",
  "dist/index.js",
  "dist/index.d.ts",
  "dist/Foo.js",
  "dist/Foo.d.ts",
  "dist/internal/bar.js",
  "dist/internal/bar.d.ts",
  "src/index.ts",
  "src/Foo.ts",
  "src/internal/bar.ts",
]

test("a clean listing passes", () => {
  assert.deepEqual(checkFileList(goodFiles, manifest()), [])
})

test("README.md and LICENSE are required in every tarball", () => {
  const failures = checkFileList(
    goodFiles.filter((file) => file !== "LICENSE" && file !== "README.md"),
    manifest(),
  )
  assert.equal(failures.length, 2)
  assert.match(failures.join("\n"), /no README\.md/)
  assert.match(failures.join("\n"), /no LICENSE/)
})

test("tests, configs, build info and stray files are refused", () => {
  const failures = checkFileList(
    [
      ...goodFiles,
      "dist/Foo.test.js",
      "src/Foo.test.ts",
      "test/Foo.test.ts",
      "dist/.tsbuildinfo",
      "vitest.config.ts",
      "notes.txt",
    ],
    manifest(),
  )
  const text = failures.join("\n")
  assert.match(text, /dist\/Foo\.test\.js is a test file/)
  assert.match(text, /test\/Foo\.test\.ts is a test folder/)
  assert.match(text, /\.tsbuildinfo is TypeScript build info/)
  assert.match(text, /vitest\.config\.ts is a tool config/)
  assert.match(text, /notes\.txt is outside the manifest's `files` roots/)
})

test("a build output without its source module is stale", () => {
  const failures = checkFileList([...goodFiles, "dist/Gone.js", "dist/Gone.d.ts"], manifest())
  assert.equal(failures.length, 2)
  assert.match(failures[0], /dist\/Gone\.js has no src\/Gone\.ts; a stale build output/)
})

test("bin targets must exist and be executable", () => {
  const withBin = manifest({ bin: { example: "./dist/bin.js" } })
  assert.match(checkFileList(goodFiles, withBin).join("\n"), /bin "example" points at \.\/dist\/bin\.js/)
  const files = [...goodFiles, "dist/bin.js", "src/bin.ts"]
  assert.match(checkFileList(files, withBin, new Map([["dist/bin.js", 0o644]])).join("\n"), /not executable/)
  assert.deepEqual(checkFileList(files, withBin, new Map([["dist/bin.js", 0o755]])), [])
})

test("source maps must point inside the tarball", () => {
  const files = ["dist/Foo.js", "dist/Foo.js.map", "src/Foo.ts"]
  const texts = {
    "dist/Foo.js": "export {}\n//# sourceMappingURL=Foo.js.map",
    "dist/Foo.js.map": JSON.stringify({ version: 3, sources: ["../src/Foo.ts"], sourceRoot: "" }),
  }
  assert.deepEqual(
    checkSourceMaps(files, "@awa/example", (file) => texts[file] ?? ""),
    [],
  )
  const withoutSrc = files.filter((file) => !file.startsWith("src/"))
  assert.match(
    checkSourceMaps(withoutSrc, "@awa/example", (file) => texts[file] ?? "").join("\n"),
    /maps to \.\.\/src\/Foo\.ts \(src\/Foo\.ts\), which is not in the tarball/,
  )
  const withoutMap = ["dist/Foo.js"]
  assert.match(
    checkSourceMaps(withoutMap, "@awa/example", (file) => texts[file] ?? "").join("\n"),
    /names the source map Foo\.js\.map, which is not in the tarball/,
  )
})

test("exports expand over the tarball, skip blocked subpaths and fail on missing targets", () => {
  const { failures, entries, blocked } = resolveExports(manifest(), goodFiles)
  assert.deepEqual(failures, [])
  assert.deepEqual([...entries.keys()].sort(), [".", "./Foo", "./index", "./package.json"])
  assert.deepEqual(blocked, ["./internal/bar"])
  const broken = resolveExports(
    manifest({ exports: { ".": { types: "./dist/main.d.ts", default: "./dist/main.js" } } }),
    goodFiles,
  )
  assert.equal(broken.failures.length, 2)
  assert.match(broken.failures[0], /exports\["\."\] \(types\) -> \.\/dist\/main\.d\.ts is not in the tarball/)
  const unmatched = resolveExports(manifest({ exports: { "./*": "./lib/*.js" } }), goodFiles)
  assert.match(unmatched.failures.join("\n"), /matches no file/)
})

test("manifest fields: publishConfig, type, engines, license, description", () => {
  const siblings = new Map([["@awa/example", "0.1.0"]])
  assert.deepEqual(checkManifest(manifest(), siblings, root).failures, [])
  const bad = manifest({
    publishConfig: undefined,
    type: undefined,
    engines: { node: ">=18" },
    license: "ISC",
    description: "",
    scripts: { postinstall: "node x.js" },
  })
  const text = checkManifest(bad, siblings, root).failures.join("\n")
  for (const expected of [
    /publishConfig/,
    /`type` must be "module"/,
    />=18 but the root/,
    /ISC/,
    /description/,
    /postinstall/,
  ]) {
    assert.match(text, expected)
  }
})

test("workspace ranges must be rewritten and satisfied by the packed sibling", () => {
  const siblings = new Map([
    ["@awa/model", "0.2.0"],
    ["@awa/example", "0.1.0"],
  ])
  const leftover = manifest({ dependencies: { "@awa/model": "workspace:^" } })
  assert.match(checkManifest(leftover, siblings, root).failures.join("\n"), /still "workspace:\^"/)
  const stale = manifest({ dependencies: { "@awa/model": "^0.1.0" } })
  assert.match(
    checkManifest(stale, siblings, root).failures.join("\n"),
    /@awa\/model@0\.2\.0 .* does not satisfy/,
  )
  const ok = manifest({ dependencies: { "@awa/model": "^0.2.0" } })
  assert.deepEqual(checkManifest(ok, siblings, root).failures, [])
})

test("satisfies follows npm's caret rules below 1.0", () => {
  assert.equal(satisfies("0.2.1", "^0.2.0"), true)
  assert.equal(satisfies("0.3.0", "^0.2.0"), false)
  assert.equal(satisfies("0.0.1", "^0.0.0"), false)
  assert.equal(satisfies("1.4.0", "^1.2.0"), true)
  assert.equal(satisfies("1.2.9", "~1.2.0"), true)
  assert.equal(satisfies("1.3.0", "~1.2.0"), false)
  assert.equal(satisfies("1.0.0", ">=1"), undefined)
})
