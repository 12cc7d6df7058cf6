#!/usr/bin/env node
// Proves the packages install and work without the monorepo around them: packs @awa/model, @awa/migrator,
// @awa/runtime, @awa/pgmq and @awa/testing with `pnpm pack`, copies examples/downstream to a clean temp folder, points
// its @awa/* dependencies at the tarballs (npm overrides make transitive @awa/* dependencies resolve to
// them too), runs `npm install` there like a user would, then `npm run typecheck` and `npm test`.
// Exits non-zero on any failure, keeping the temp folder for inspection; removes it on success.
// Usage: node scripts/example-check.mjs [--keep]   (after `pnpm build`)
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

const root = new URL("..", import.meta.url).pathname
const packages = ["model", "migrator", "runtime", "pgmq", "testing"]
const keep = process.argv.includes("--keep")

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

const run = (cmd, args, cwd, { quiet = false } = {}) => {
  console.log(`example-check: (in ${cwd}) ${cmd} ${args.join(" ")}`)
  const result = spawnSync(cmd, args, {
    cwd,
    stdio: quiet ? ["ignore", "pipe", "pipe"] : "inherit",
    env: userEnv,
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
  // Every @awa package must be one copy, installed from its tarball, with its build inside.
  for (const name of Object.keys(tarballs)) {
    const installed = join(project, "node_modules", name)
    if (!existsSync(join(installed, "dist", "index.js"))) {
      console.error(`example-check: ${name} is not installed with its dist/ from the tarball`)
      status = 1
    }
  }
  const nested = spawnSync("npm", ["ls", "--all", "--parseable", ...Object.keys(tarballs)], {
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
if (status === 0) status = run("npm", ["run", "typecheck"], project)
if (status === 0) status = run("npm", ["test"], project)

if (status !== 0) {
  console.error(`example-check: FAILED; the project is kept in ${project}`)
  process.exit(status)
}
if (keep) console.log(`example-check: passed; the project is kept in ${project}`)
else {
  rmSync(work, { recursive: true, force: true })
  console.log("example-check: passed")
}
