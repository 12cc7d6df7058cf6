#!/usr/bin/env node
// Keeps the tarballs of a release in the repository, so that later trees can test the released clients
// against their newer schema (scripts/old-client-check.mjs).
//
// Run it once per release, right after `pnpm changeset version` (and `pnpm install`), before the release
// commit: it builds, packs @awa/runtime and the workspace packages it depends on (today @awa/model) with
// `pnpm pack` (workspace ranges become real versions, exactly what `changeset publish` uploads), replaces
// release-artifacts/*.tgz with them and writes release-artifacts/manifest.json (name, version, file,
// sha256, bytes of each; the commit the release was cut from). Commit the folder with the release.
//
// Why tarballs and not a checkout of the release tag: CI clones are often shallow and carry no tags, a
// tag checkout would need a second install and build of an old tree with its old toolchain, and a tarball
// is byte for byte what users install from the registry (files list, rewritten ranges, built dist/).
//
// It refuses to pack while changesets are pending (the versions are not the released ones yet) and
// versions 0.0.0 (never released); --allow-pending and --allow-unreleased exist for rehearsals only.
// A kept version is never replaced by different bytes (a later tree at the same version): --force only.
// Usage: node scripts/release-artifacts.mjs [--no-build] [--allow-pending] [--allow-unreleased] [--force]
//        [--out DIR]
import { spawnSync } from "node:child_process"
import { createHash } from "node:crypto"
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from "node:fs"
import { tmpdir } from "node:os"
import { basename, dirname, join, relative, resolve } from "node:path"
import { fileURLToPath } from "node:url"
import { workspacePackageDirs } from "./deps-check.mjs"

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..")

/** The packages kept: the old client (@awa/runtime) and the workspace packages it needs at run time. */
export const artifactPackages = (manifests, client = "@awa/runtime") => {
  const byName = new Map(manifests.map((manifest) => [manifest.name, manifest]))
  if (!byName.has(client)) throw new Error(`no workspace package is named ${client}`)
  const wanted = []
  const visit = (name) => {
    if (wanted.includes(name)) return
    wanted.push(name)
    const manifest = byName.get(name)
    const optional = manifest.peerDependenciesMeta ?? {}
    for (const dep of [
      ...Object.keys(manifest.dependencies ?? {}),
      ...Object.keys(manifest.peerDependencies ?? {}).filter((peer) => optional[peer]?.optional !== true),
    ]) {
      if (byName.has(dep)) visit(dep)
    }
  }
  visit(client)
  return wanted.map((name) => byName.get(name))
}

/** The sha256 of a file, hex. */
export const sha256Of = (file) => createHash("sha256").update(readFileSync(file)).digest("hex")

const main = () => {
  const args = process.argv.slice(2)
  const outIndex = args.indexOf("--out")
  const out = outIndex >= 0 ? resolve(args[outIndex + 1]) : join(root, "release-artifacts")
  const pending = readdirSync(join(root, ".changeset")).filter(
    (file) => file.endsWith(".md") && file !== "README.md",
  )
  if (pending.length > 0 && !args.includes("--allow-pending")) {
    console.error(
      `release-artifacts: ${pending.length} changesets are pending (${pending.slice(0, 3).join(", ")}...): the ` +
        "package versions are not the released ones. Run `pnpm changeset version` (and `pnpm install`) first.",
    )
    process.exit(1)
  }
  const dirs = new Map()
  const manifests = workspacePackageDirs(root).map((dir) => {
    const manifest = JSON.parse(readFileSync(join(dir, "package.json"), "utf8"))
    dirs.set(manifest.name, dir)
    return manifest
  })
  const chosen = artifactPackages(manifests)
  for (const manifest of chosen) {
    if (manifest.private === true) {
      console.error(
        `release-artifacts: ${manifest.name} is private and never released; it cannot be an artifact.`,
      )
      process.exit(1)
    }
    if (manifest.version === "0.0.0" && !args.includes("--allow-unreleased")) {
      console.error(
        `release-artifacts: ${manifest.name} is at 0.0.0, which was never released; cut the release first.`,
      )
      process.exit(1)
    }
  }
  if (!args.includes("--no-build")) {
    console.log("release-artifacts: pnpm run build")
    if (spawnSync("pnpm", ["run", "build"], { cwd: root, stdio: "inherit" }).status !== 0) process.exit(1)
  }

  const staging = mkdtempSync(join(tmpdir(), "awa-release-artifacts-"))
  const packed = []
  for (const manifest of chosen) {
    const result = spawnSync("pnpm", ["pack", "--json", "--pack-destination", staging], {
      cwd: dirs.get(manifest.name),
      encoding: "utf8",
    })
    if (result.status !== 0) {
      process.stderr.write(`${result.stdout}${result.stderr}`)
      console.error(`release-artifacts: pnpm pack failed for ${manifest.name}`)
      process.exit(1)
    }
    const file = JSON.parse(result.stdout.slice(result.stdout.indexOf("{"))).filename
    packed.push({ name: manifest.name, version: manifest.version, staged: file })
  }

  // A released version's tarball never changes: repacking a later tree at the same version is refused.
  const previousPath = join(out, "manifest.json")
  const previous = existsSync(previousPath) ? JSON.parse(readFileSync(previousPath, "utf8")) : undefined
  for (const { name, version, staged } of packed) {
    const kept =
      previous?.rehearsal === true ? undefined : previous?.packages.find((entry) => entry.name === name)
    if (kept?.version === version && kept.sha256 !== sha256Of(staged) && !args.includes("--force")) {
      console.error(
        `release-artifacts: ${name}@${version} is already kept with other contents: this tree is not the one ` +
          `that was released as ${version}. Bump the version with \`pnpm changeset version\` first ` +
          "(--force replaces it anyway).",
      )
      process.exit(1)
    }
  }
  mkdirSync(out, { recursive: true })
  for (const file of readdirSync(out)) if (file.endsWith(".tgz")) rmSync(join(out, file))
  const entries = packed.map(({ name, version, staged }) => {
    const file = basename(staged)
    renameSync(staged, join(out, file))
    const bytes = readFileSync(join(out, file)).length
    return { name, version, file, sha256: sha256Of(join(out, file)), bytes }
  })
  rmSync(staging, { recursive: true, force: true })
  const commit = spawnSync("git", ["rev-parse", "HEAD"], { cwd: root, encoding: "utf8" }).stdout.trim()
  const dirty =
    spawnSync("git", ["status", "--porcelain", "--", "packages"], {
      cwd: root,
      encoding: "utf8",
    }).stdout.trim() !== ""
  const manifest = {
    about:
      "Tarballs of the latest release of @awa/runtime and what it needs, packed by scripts/release-artifacts.mjs " +
      "and installed by scripts/old-client-check.mjs to run the released client against the current schema.",
    packedFrom: dirty ? `${commit} plus the uncommitted release bump` : commit,
    rehearsal: pending.length > 0 || chosen.some((entry) => entry.version === "0.0.0"),
    packages: entries,
  }
  writeFileSync(join(out, "manifest.json"), `${JSON.stringify(manifest, null, 2)}\n`)
  for (const entry of entries) {
    console.log(
      `release-artifacts: ${entry.name}@${entry.version} -> ${relative(root, join(out, entry.file))} (${entry.bytes} bytes)`,
    )
  }
  if (manifest.rehearsal)
    console.log("release-artifacts: REHEARSAL ONLY (pending changesets or 0.0.0): do not commit these.")
  else console.log(`release-artifacts: commit ${relative(root, out) || out}/ with the release.`)
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    main()
  } catch (error) {
    console.error(`release-artifacts: ${error instanceof Error ? error.message : error}`)
    process.exit(2)
  }
}
