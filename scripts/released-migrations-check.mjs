#!/usr/bin/env node
// Released migrations never change: a database migrated by a released `awa migrate` records each file's
// checksum in its ledger, and a later release that edited the file would report drift on every such database
// (or, worse, leave it without the edit). This check compares the migration sets bundled in the latest
// release's @awa/migrator tarball (release-artifacts/, see scripts/release-artifacts.mjs) with the sets the
// current tree bundles (packages/migrator/dist, so run `pnpm build` first): every released file must still
// be there with the same SQL, and new files may only come after the last released file of their set.
// Without a released migrator tarball there is nothing to compare, and it says so.
// Usage: node scripts/released-migrations-check.mjs
import { spawnSync } from "node:child_process"
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join, resolve } from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..")
const bundlePath = join("dist", "internal", "bundledMigrations.generated.js")

/**
 * The differences between the released sets and the current ones (both `{ [set]: [{ file, sql }] }`), as
 * messages saying what to do; empty when the current sets only add files after the released ones.
 */
export const compareReleasedMigrations = (released, current, releaseName) => {
  const problems = []
  for (const [set, files] of Object.entries(released)) {
    const now = current[set]
    if (now === undefined) {
      problems.push(`migration set ${set} of ${releaseName} is gone: put it back (released sets stay).`)
      continue
    }
    const byFile = new Map(now.map((m) => [m.file, m.sql]))
    for (const { file, sql } of files) {
      if (!byFile.has(file)) {
        problems.push(`migrations/${set}/${file} was released in ${releaseName} and is gone: restore it.`)
      } else if (byFile.get(file) !== sql) {
        problems.push(
          `migrations/${set}/${file} differs from ${releaseName}: released migrations are immutable (databases ` +
            "recorded their checksums). Restore the released text and put the change in a new migration file.",
        )
      }
    }
    const last = files
      .map((m) => m.file)
      .sort()
      .at(-1)
    for (const { file } of now) {
      if (last !== undefined && !files.some((m) => m.file === file) && file < last) {
        problems.push(
          `migrations/${set}/${file} is new but sorts before ${last}, the last file ${releaseName} released: ` +
            "number new migrations after the released ones.",
        )
      }
    }
  }
  return problems
}

const main = async () => {
  const manifestPath = join(root, "release-artifacts", "manifest.json")
  const manifest = existsSync(manifestPath) ? JSON.parse(readFileSync(manifestPath, "utf8")) : undefined
  const entry = manifest?.packages?.find((p) => p.name === "@awa/migrator")
  if (entry === undefined) {
    console.log("released-migrations: no released @awa/migrator in release-artifacts/; nothing to compare.")
    return
  }
  const currentBundle = join(root, "packages", "migrator", bundlePath)
  if (!existsSync(currentBundle)) {
    console.error("released-migrations: packages/migrator/dist is missing; run `pnpm build` first.")
    process.exit(2)
  }
  const work = mkdtempSync(join(tmpdir(), "awa-released-migrations-"))
  try {
    const tar = spawnSync("tar", ["xzf", join(root, "release-artifacts", entry.file), "-C", work], {
      encoding: "utf8",
    })
    if (tar.status !== 0) {
      console.error(`released-migrations: cannot unpack release-artifacts/${entry.file}: ${tar.stderr}`)
      process.exit(2)
    }
    const releasedBundle = join(work, "package", bundlePath)
    if (!existsSync(releasedBundle)) {
      console.error(`released-migrations: ${entry.file} has no ${bundlePath}; cannot compare.`)
      process.exit(2)
    }
    const released = (await import(pathToFileURL(releasedBundle).href)).bundledSets
    const current = (await import(pathToFileURL(currentBundle).href)).bundledSets
    const releaseName = `@awa/migrator@${entry.version}`
    const problems = compareReleasedMigrations(released, current, releaseName)
    if (problems.length > 0) {
      for (const problem of problems) console.error(`released-migrations: ${problem}`)
      process.exit(1)
    }
    const count = Object.values(released).reduce((n, files) => n + files.length, 0)
    console.log(`released-migrations: the ${count} migrations of ${releaseName} are unchanged in this tree.`)
  } finally {
    rmSync(work, { recursive: true, force: true })
  }
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await main()
