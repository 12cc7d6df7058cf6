#!/usr/bin/env node
// `pnpm changeset:check`: the changesets setup still versions every published package on its own, and
// `changeset status` works here (also in a CI clone without the base branch).
//
// Config (.changeset/config.json): no `fixed` or `linked` groups (they would tie versions together);
// `access: public`; private workspace packages (e.g. @awa/bench) are never versioned or tagged
// (`privatePackages: { version: false, tag: false }`, or listed in `ignore`); `updateInternalDependencies`
// is "patch" or "minor"; and when a workspace package peer-depends on another,
// `onlyUpdatePeerDependentsWhenOutOfRange` is on (otherwise every minor release of the peer would give the
// dependent a major release).
//
// Plan (`changeset status --output`): every changeset names workspace packages; no private package is
// released; no package gets a major bump that no changeset asked for (the peer-dependency cascade above);
// prints old -> new version per package. `changeset status` diffs against the base branch to find packages
// changed without a changeset; when that ref is absent (shallow or detached CI clones) it runs with
// `--since=HEAD` and says so.
//
// Usage: node scripts/changeset-check.mjs     (exit 0: fine, 1: a finding, 2: cannot run)
import { spawnSync } from "node:child_process"
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join, resolve } from "node:path"
import { fileURLToPath } from "node:url"
import { workspacePackageDirs } from "./deps-check.mjs"

/** Checks a parsed config.json against the workspace `packages` ([{ name, private, manifest }]). */
export const checkConfig = (config, packages) => {
  const failures = []
  if ((config.fixed ?? []).length > 0) {
    failures.push(
      "`fixed` groups tie packages to one version; awa versions each package independently: empty it.",
    )
  }
  if ((config.linked ?? []).length > 0) {
    failures.push(
      "`linked` groups move packages' versions together; awa versions them independently: empty it.",
    )
  }
  if (config.access !== "public")
    failures.push('`access` must be "public": the @awa scope publishes publicly.')
  const privateVersioned = config.privatePackages?.version !== false
  const privateTagged = config.privatePackages?.tag !== false
  for (const pkg of packages.filter((entry) => entry.private)) {
    if ((privateVersioned || privateTagged) && !(config.ignore ?? []).includes(pkg.name)) {
      failures.push(
        `${pkg.name} is private but changesets would version or tag it: set ` +
          '`"privatePackages": { "version": false, "tag": false }` (or list it in `ignore`).',
      )
    }
  }
  if (!["patch", "minor"].includes(config.updateInternalDependencies ?? "patch")) {
    failures.push('`updateInternalDependencies` must be "patch" or "minor".')
  }
  const names = new Set(packages.map((entry) => entry.name))
  const peerPairs = packages.flatMap((entry) =>
    Object.keys(entry.manifest.peerDependencies ?? {})
      .filter((dep) => names.has(dep))
      .map((dep) => `${entry.name} -> ${dep}`),
  )
  const outOfRangeOnly =
    config.___experimentalUnsafeOptions_WILL_CHANGE_IN_PATCH?.onlyUpdatePeerDependentsWhenOutOfRange === true
  if (peerPairs.length > 0 && !outOfRangeOnly) {
    failures.push(
      `workspace peer dependencies (${peerPairs.join(", ")}) give the dependent a MAJOR release on every minor ` +
        "release of the peer unless `___experimentalUnsafeOptions_WILL_CHANGE_IN_PATCH." +
        "onlyUpdatePeerDependentsWhenOutOfRange` is true (and the peer range is wide enough not to be left).",
    )
  }
  for (const pkg of packages) {
    for (const [dep, range] of Object.entries(pkg.manifest.peerDependencies ?? {})) {
      if (names.has(dep) && /^workspace:[~^]$/.test(range)) {
        failures.push(
          `${pkg.name} peer-depends on ${dep} as "${range}": a 0.x minor release of ${dep} leaves that range and ` +
            `gives ${pkg.name} a major release. Use a range that says what really works (e.g. "*" or ">=0.1.0").`,
        )
      }
    }
  }
  return failures
}

/** Checks a release plan from `changeset status --output` against the workspace packages. */
export const checkPlan = (plan, packages) => {
  const failures = []
  const byName = new Map(packages.map((entry) => [entry.name, entry]))
  for (const changeset of plan.changesets) {
    for (const release of changeset.releases) {
      if (!byName.has(release.name)) {
        failures.push(`.changeset/${changeset.id}.md names ${release.name}, which is no workspace package.`)
      }
    }
  }
  for (const release of plan.releases) {
    const pkg = byName.get(release.name)
    if (pkg?.private && release.type !== "none") {
      failures.push(`${release.name} is private but the plan releases it (${release.type}).`)
    }
    if (release.type === "major") {
      const asked = plan.changesets.some((changeset) =>
        changeset.releases.some((entry) => entry.name === release.name && entry.type === "major"),
      )
      if (!asked) {
        failures.push(
          `${release.name} would get a major release (${release.oldVersion} -> ${release.newVersion}) that no ` +
            "changeset asks for: a dependency cascade (usually a peer dependency range that a release leaves).",
        )
      }
    }
  }
  return failures
}

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..")

const main = () => {
  const packages = workspacePackageDirs(root).map((dir) => {
    const manifest = JSON.parse(readFileSync(join(dir, "package.json"), "utf8"))
    return { name: manifest.name, private: manifest.private === true, manifest }
  })
  const config = JSON.parse(readFileSync(join(root, ".changeset", "config.json"), "utf8"))
  const failures = checkConfig(config, packages)

  const base = config.baseBranch ?? "main"
  const hasBase = spawnSync("git", ["rev-parse", "--verify", "--quiet", base], { cwd: root }).status === 0
  const args = ["exec", "changeset", "status"]
  if (!hasBase) {
    console.log(
      `changeset-check: the base branch "${base}" is not in this clone; running changeset status --since=HEAD ` +
        "(the check for packages changed without a changeset is skipped).",
    )
    args.push("--since=HEAD")
  }
  const work = mkdtempSync(join(tmpdir(), "awa-changeset-check-"))
  const output = join(work, "plan.json")
  const status = spawnSync("pnpm", [...args, `--output=${output}`], { cwd: root, encoding: "utf8" })
  if (status.status !== 0) {
    process.stderr.write(`${status.stdout}${status.stderr}`)
    console.error("changeset-check: `changeset status` failed (output above).")
    rmSync(work, { recursive: true, force: true })
    process.exit(1)
  }
  const plan = JSON.parse(readFileSync(output, "utf8"))
  rmSync(work, { recursive: true, force: true })
  failures.push(...checkPlan(plan, packages))

  const pending = readdirSync(join(root, ".changeset")).filter(
    (file) => file.endsWith(".md") && file !== "README.md",
  )
  console.log(`changeset-check: ${pending.length} pending changesets; \`changeset version\` would release:`)
  for (const release of plan.releases.filter((entry) => entry.type !== "none")) {
    console.log(`  ${release.name}: ${release.oldVersion} -> ${release.newVersion} (${release.type})`)
  }
  if (failures.length > 0) {
    for (const failure of failures) console.error(`  FAIL: ${failure}`)
    process.exit(1)
  }
  console.log("changeset-check: config and plan are sound (independent versions, private packages left out).")
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    main()
  } catch (error) {
    console.error(`changeset-check: ${error instanceof Error ? error.message : error}`)
    process.exit(2)
  }
}
