#!/usr/bin/env node
// Proves the packages install and work without the monorepo around them: packs every package under
// packages/ with `pnpm pack` (checking that each tarball has its README.md and the LICENSE), copies
// examples/downstream to a clean temp folder, points its @awa/* dependencies at the tarballs (npm
// overrides make transitive @awa/* dependencies resolve to them too), runs `npm install` there like a user
// would, then `npm run typecheck`, and `npm test` once per
// storage engine @awa/testing implements (AWA_TEST_ENGINE for the fixture and AWA_ENGINE for the app's own
// producer, set alike, as a user choosing an engine would).
// Exits non-zero on any failure, keeping the temp folder for inspection; removes it on success.
// Usage: node scripts/example-check.mjs [--keep] [--node min|VERSION] [--engines canonical,...]   (after `pnpm build`)
import { spawnSync } from "node:child_process"
import {
  chmodSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { performance } from "node:perf_hooks"
import { pathToFileURL } from "node:url"
import { runUnderNode } from "./node-version.mjs"

const root = new URL("..", import.meta.url).pathname
// Every published package is packed (and checked for its README and LICENSE); the example installs the
// ones it depends on.
const packages = readdirSync(join(root, "packages"))
  .filter((dir) => existsSync(join(root, "packages", dir, "package.json")))
  .sort()
// --node min|VERSION: run this whole check again under that exact Node (npm, tsc and vitest included).
const args = runUnderNode(root, new URL(import.meta.url).pathname, process.argv.slice(2), (message) =>
  console.log(`example-check: ${message}`),
)
const keep = args.includes("--keep")
const readManifest = (pkg) => JSON.parse(readFileSync(join(root, "packages", pkg, "package.json"), "utf8"))

const fail = (message) => {
  console.error(`example-check: ${message}`)
  process.exit(1)
}

// A user's shell: none of the package manager's or vitest's variables from the run that started us.
const userEnv = Object.fromEntries(
  Object.entries(process.env).filter(
    ([name]) => !/^(npm_|pnpm_|PNPM_|VITEST|TURBO_)/i.test(name) && name !== "NODE_OPTIONS",
  ),
)

const run = (cmd, args, cwd, { quiet = false, env = {} } = {}) => {
  const shownEnv = Object.entries(env).map(([name, value]) => `${name}=${value} `)
  console.log(`example-check: (in ${cwd}) ${shownEnv.join("")}${cmd} ${args.join(" ")}`)
  const result = spawnSync(cmd, args, {
    cwd,
    stdio: quiet ? ["ignore", "pipe", "pipe"] : "inherit",
    env: { ...userEnv, ...env },
    encoding: "utf8",
  })
  if (result.error) fail(`${cmd} could not start: ${result.error.message}`)
  // Quiet commands (pnpm pack lists every file) show their output only when they fail.
  if (quiet && result.status !== 0) process.stderr.write(`${result.stdout}${result.stderr}`)
  return result.status ?? 1
}

for (const pkg of packages) {
  if (!existsSync(join(root, "packages", pkg, "dist", "index.js"))) {
    fail(`packages/${pkg}/dist is missing; run \`pnpm build\` first.`)
  }
}

const { testEngineNames, parseTestEngine } = await import(
  pathToFileURL(join(root, "packages", "testing", "dist", "TestEngine.js")).href
)
const enginesIndex = process.argv.indexOf("--engines")
let engines = testEngineNames
if (enginesIndex !== -1) {
  const value = process.argv[enginesIndex + 1]
  if (value === undefined || value.startsWith("--")) fail("--engines needs a comma-separated list")
  try {
    engines = value
      .split(",")
      .filter(Boolean)
      .map((engine) => parseTestEngine(engine, "--engines"))
  } catch (error) {
    console.error(`example-check: ${error.message}`)
    process.exit(2)
  }
}

const work = mkdtempSync(join(tmpdir(), "awa-example-"))
// mkdtemp makes the folder private (0700); as root, the embedded Postgres runs as an unprivileged user
// that must reach its binaries under node_modules, as it can in an ordinary project folder.
chmodSync(work, 0o755)
const tarballDir = join(work, "tarballs")
mkdirSync(tarballDir)

// pnpm pack replaces workspace:^ ranges with the packages' real versions.
const tarballs = {}
for (const pkg of packages) {
  const dir = join(root, "packages", pkg)
  const name = JSON.parse(readFileSync(join(dir, "package.json"), "utf8")).name
  const before = new Set(readdirSync(tarballDir))
  if (run("pnpm", ["pack", "--pack-destination", tarballDir], dir, { quiet: true }) !== 0) {
    fail(`pnpm pack failed for ${name}`)
  }
  const made = readdirSync(tarballDir).filter((file) => !before.has(file) && file.endsWith(".tgz"))
  if (made.length !== 1) fail(`expected one tarball from ${name}, found ${made.join(", ") || "none"}`)
  tarballs[name] = join(tarballDir, made[0])
  console.log(`example-check: packed ${name} -> ${tarballs[name]}`)
}

// Every tarball carries a README and the repository's LICENSE.
const license = readFileSync(join(root, "LICENSE"), "utf8")
for (const [name, tarball] of Object.entries(tarballs)) {
  const listing = spawnSync("tar", ["tzf", tarball], { encoding: "utf8" })
  const entries = new Set(listing.stdout.split("\n"))
  if (listing.status !== 0) fail(`cannot list ${tarball}: ${listing.stderr}`)
  if (!entries.has("package/README.md"))
    fail(`${name}'s tarball has no README.md; add one and list it in "files"`)
  if (!entries.has("package/LICENSE"))
    fail(`${name}'s tarball has no LICENSE; copy the root LICENSE into its folder`)
  const packed = spawnSync("tar", ["xzOf", tarball, "package/LICENSE"], { encoding: "utf8" }).stdout
  if (packed !== license) fail(`${name}'s LICENSE differs from the root LICENSE; copy the root LICENSE again`)
}
// `--node min` tests the root's minimum Node, so every package must declare that same range.
const rootEngines = JSON.parse(readFileSync(join(root, "package.json"), "utf8")).engines?.node
for (const pkg of packages) {
  const { name, engines } = readManifest(pkg)
  if (engines?.node !== rootEngines)
    fail(
      `${name} declares engines.node ${JSON.stringify(engines?.node)}; the packages declare ${rootEngines} (the root's)`,
    )
}
console.log(
  `example-check: every tarball has README.md and the LICENSE; every package declares node ${rootEngines}`,
)

const project = join(work, "downstream")
cpSync(join(root, "examples", "downstream"), project, {
  recursive: true,
  filter: (source) => !/[\\/](node_modules|dist)([\\/]|$)/.test(source.slice(root.length)),
})

const manifestPath = join(project, "package.json")
const manifest = JSON.parse(readFileSync(manifestPath, "utf8"))
for (const field of ["dependencies", "devDependencies"]) {
  for (const name of Object.keys(manifest[field] ?? {})) {
    if (!name.startsWith("@awa/")) continue
    if (tarballs[name] === undefined) fail(`the example depends on ${name}, which this script does not pack`)
    manifest[field][name] = `file:${tarballs[name]}`
  }
}
// Transitive @awa/* dependencies (e.g. @awa/testing -> @awa/migrator@^0.0.0) must come from the tarballs,
// never from a registry.
manifest.overrides = Object.fromEntries(
  Object.entries(tarballs).map(([name, file]) => [name, `file:${file}`]),
)
writeFileSync(manifestPath, `${JSON.stringify(manifest, null, 2)}\n`)

let status = run("npm", ["install", "--no-audit", "--no-fund", "--loglevel=error"], project)
if (status === 0) {
  // Every @awa package the example needs (directly or through another) must be one copy, installed from
  // its tarball, with its build inside.
  const needed = new Set()
  const visit = (deps) => {
    for (const name of Object.keys(deps ?? {})) {
      if (!name.startsWith("@awa/") || needed.has(name)) continue
      needed.add(name)
      const dir = packages.find((pkg) => readManifest(pkg).name === name)
      if (dir !== undefined) visit(readManifest(dir).dependencies)
    }
  }
  visit({ ...manifest.dependencies, ...manifest.devDependencies })
  for (const name of needed) {
    const installed = join(project, "node_modules", name)
    if (!existsSync(join(installed, "dist", "index.js"))) {
      console.error(`example-check: ${name} is not installed with its dist/ from the tarball`)
      status = 1
    }
  }
  const nested = spawnSync("npm", ["ls", "--all", "--parseable", ...needed], {
    cwd: project,
    env: userEnv,
    encoding: "utf8",
  })
  const copies = nested.stdout
    .split("\n")
    .filter(
      (line) =>
        /node_modules[\\/]@awa[\\/][^\\/]+$/.test(line) &&
        !line.startsWith(join(project, "node_modules", "@awa")),
    )
  if (copies.length > 0) {
    console.error(`example-check: nested copies of @awa packages were installed:\n  ${copies.join("\n  ")}`)
    status = 1
  }
}
if (status === 0) {
  const version = spawnSync("node", ["--version"], {
    cwd: project,
    env: userEnv,
    encoding: "utf8",
  }).stdout.trim()
  console.log(`example-check: the example runs under Node ${version}`)
  if (version !== process.version) fail(`\`node\` on the PATH is ${version}, not ${process.version}`)
  status = run("npm", ["run", "typecheck"], project)
}
const timings = []
for (const engine of engines) {
  if (status !== 0) break
  const start = performance.now()
  status = run("npm", ["test"], project, { env: { AWA_TEST_ENGINE: engine, AWA_ENGINE: engine } })
  timings.push(`${engine} ${((performance.now() - start) / 1000).toFixed(1)} s`)
}
if (timings.length > 0) console.log(`example-check: npm test per engine: ${timings.join(", ")}`)

if (status !== 0) {
  console.error(`example-check: FAILED; the project is kept in ${project}`)
  process.exit(status)
}
if (keep) console.log(`example-check: passed; the project is kept in ${project}`)
else {
  rmSync(work, { recursive: true, force: true })
  console.log("example-check: passed")
}
