#!/usr/bin/env node
// `pnpm release:dry`: builds, packs every published workspace package (every package.json under the
// workspace globs without `"private": true`, so a new packages/<name> is covered without editing this file)
// with `pnpm pack` into a temp folder, and verifies what `changeset publish` would upload:
//
//   files      package.json, README.md and LICENSE in every tarball; nothing outside the manifest's `files`
//              roots; no tests, fixtures, configs, build info, logs or tarballs; every dist/ output has its
//              src/ module (no stale outputs of deleted sources); every source map's `sources` and every
//              `sourceMappingURL` point at files inside the tarball.
//   manifest   name, version, description, license, type: module, engines.node (the root's range),
//              publishConfig.access public for scoped names, repository when the root declares one, no
//              install scripts, no workspace:/catalog:/link:/file: ranges left, and every @awa/* range
//              satisfied by the version of the sibling packed beside it.
//   exports    every `exports` target (patterns expanded against the tarball) and main/types exist; then
//              all tarballs are installed with npm in a clean temp project (like scripts/example-check.mjs,
//              npm overrides keep @awa/* on the tarballs) and every entry point is imported there by Node,
//              every `null` (blocked) subpath is refused, and tsc (moduleResolution nodenext, skipLibCheck
//              off) type-checks a file importing every entry point's types.
//   bin        every `bin` target exists, starts with a shebang and is executable in the tarball, is linked
//              into node_modules/.bin by the install and answers `--version` with the package's version.
//
// Exits non-zero naming each problem and what to do; the temp folder is kept on failure (and with --keep).
// Usage: node scripts/release-dry.mjs [--no-build] [--keep] [--skip-install]
import { spawnSync } from "node:child_process"
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join, posix, resolve } from "node:path"
import { fileURLToPath } from "node:url"
import { workspacePackageDirs } from "./deps-check.mjs"

// ---------------------------------------------------------------------------------------------------------
// Pure checks (exported for scripts/release-dry.test.mjs)

/** Files npm always packs whatever `files` says. */
const alwaysPacked = new Set(["package.json", "README.md", "LICENSE", "CHANGELOG.md"])

/** Paths that must never reach a published tarball, each with the reason shown when one does. */
export const forbiddenPaths = [
  [/(^|\/)(test|tests|__tests__|__fixtures__|fixtures)\//, "a test folder"],
  [/\.(test|spec)\.[cm]?[jt]sx?$|\.(test|spec)\.d\.[cm]?ts$|\.(test|spec)\.[cm]?[jt]s\.map$/, "a test file"],
  [/\.tsbuildinfo$/, "TypeScript build info"],
  [/(^|\/)tsconfig[^/]*\.json$/, "a tsconfig"],
  [/(^|\/)(vitest|vite|jest|biome|turbo)\.[^/]*$|(^|\/)\.vitest-results\.json$/, "a tool config or report"],
  [/(^|\/)(node_modules|\.turbo|coverage|\.awa-tmp|\.git)\//, "a tool or dependency folder"],
  [/(^|\/)\.env(\.|$)|\.log$|\.tgz$|(^|\/)\.DS_Store$/, "an environment file, log or tarball"],
]

/**
 * Checks a tarball's file list (paths relative to `package/`, with `modes`: path -> octal mode) against
 * its packed manifest. Returns failure messages.
 */
export const checkFileList = (files, manifest, modes = new Map()) => {
  const failures = []
  const present = new Set(files)
  const name = manifest.name
  for (const required of ["package.json", "README.md", "LICENSE"]) {
    if (!present.has(required)) {
      failures.push(
        `${name}: the tarball has no ${required}. ` +
          (required === "LICENSE"
            ? "Put the root LICENSE (MIT) in the package folder; npm packs LICENSE whatever `files` says."
            : required === "README.md"
              ? "Write packages/<name>/README.md (what the package is, install, a first example)."
              : "pnpm pack produced no manifest: check the package folder."),
      )
    }
  }
  const roots = new Set(
    (manifest.files ?? [])
      .filter((entry) => !entry.startsWith("!"))
      .map((entry) => entry.replace(/^\.\//, "").split("/")[0]),
  )
  for (const file of files) {
    for (const [pattern, what] of forbiddenPaths) {
      if (pattern.test(file)) {
        failures.push(
          `${name}: ${file} is ${what} and must not be published; exclude it through \`files\` ` +
            `(e.g. "!**/${file.split("/").pop()}") or move it out of the packed folders.`,
        )
        break
      }
    }
    const top = file.split("/")[0]
    if (!alwaysPacked.has(file) && !roots.has(top)) {
      failures.push(`${name}: ${file} is outside the manifest's \`files\` roots; a stray file, remove it.`)
    }
  }
  // Build outputs of modules that no longer exist (tsc never deletes them) must not ship.
  if ([...present].some((file) => file.startsWith("src/"))) {
    for (const file of files) {
      const match = /^dist\/(.+?)(\.d)?\.(js|ts)(\.map)?$/.exec(file)
      if (match === null) continue
      const stem = match[1]
      if (!["ts", "tsx", "mts", "js"].some((ext) => present.has(`src/${stem}.${ext}`))) {
        failures.push(
          `${name}: ${file} has no src/${stem}.ts; a stale build output. Delete dist/ and run \`pnpm build\`.`,
        )
      }
    }
  }
  for (const [bin, target] of Object.entries(binEntries(manifest))) {
    const path = normalize(target)
    if (!present.has(path)) {
      failures.push(
        `${name}: bin "${bin}" points at ${target}, which is not in the tarball; build, or fix bin.`,
      )
      continue
    }
    const mode = modes.get(path)
    if (mode !== undefined && (mode & 0o111) === 0) {
      failures.push(`${name}: bin "${bin}" (${target}) is not executable in the tarball.`)
    }
  }
  return failures
}

/** Checks the source maps and `sourceMappingURL` comments of a tarball (`read(path)` gives a file's text). */
export const checkSourceMaps = (files, name, read) => {
  const failures = []
  const present = new Set(files)
  for (const file of files) {
    if (file.endsWith(".map")) {
      let map
      try {
        map = JSON.parse(read(file))
      } catch {
        failures.push(`${name}: ${file} is not valid JSON.`)
        continue
      }
      for (const source of map.sources ?? []) {
        const target = posix.normalize(posix.join(posix.dirname(file), map.sourceRoot ?? "", source))
        if (!present.has(target)) {
          failures.push(
            `${name}: ${file} maps to ${source} (${target}), which is not in the tarball; ship src/ in \`files\` ` +
              "or build without source maps.",
          )
        }
      }
    } else if (/\.(js|d\.ts)$/.test(file)) {
      const match = /\/\/# sourceMappingURL=(\S+)\s*$/.exec(read(file))
      if (match === null || match[1].startsWith("data:")) continue
      const target = posix.normalize(posix.join(posix.dirname(file), match[1]))
      if (!present.has(target)) {
        failures.push(`${name}: ${file} names the source map ${match[1]}, which is not in the tarball.`)
      }
    }
  }
  return failures
}

const normalize = (target) => posix.normalize(target.replace(/^\.\//, ""))

const binEntries = (manifest) => {
  if (manifest.bin === undefined) return {}
  if (typeof manifest.bin === "string") return { [manifest.name.split("/").pop()]: manifest.bin }
  return manifest.bin
}

/**
 * Every `exports` entry of a manifest as `{ subpath, condition, target }` leaves (`target` null for a
 * blocked subpath), conditions joined with "+".
 */
export const exportLeaves = (exportsField) => {
  const leaves = []
  const walk = (subpath, value, conditions) => {
    if (value === null) leaves.push({ subpath, condition: conditions.join("+"), target: null })
    else if (typeof value === "string")
      leaves.push({ subpath, condition: conditions.join("+"), target: value })
    else if (Array.isArray(value)) for (const item of value) walk(subpath, item, conditions)
    else for (const [key, inner] of Object.entries(value)) walk(subpath, inner, [...conditions, key])
  }
  if (exportsField === undefined) return leaves
  if (typeof exportsField === "string" || Array.isArray(exportsField)) walk(".", exportsField, [])
  else {
    const keys = Object.keys(exportsField)
    if (keys.length > 0 && keys.every((key) => !key.startsWith("."))) walk(".", exportsField, [])
    else for (const [subpath, value] of Object.entries(exportsField)) walk(subpath, value, [])
  }
  return leaves
}

const patternRegExp = (pattern) => {
  const [before, after] = pattern.split("*")
  const quote = (text) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")
  return new RegExp(`^${quote(before)}(.+)${quote(after ?? "")}$`)
}

/**
 * Resolves a manifest's `exports` against a tarball's files. Returns `{ failures, entries }` where
 * `entries` are the importable subpaths (`"."`, `"./Foo"`; patterns expanded over the files they match,
 * minus subpaths a `null` entry blocks) and `blocked` one example specifier per blocked pattern.
 */
export const resolveExports = (manifest, files) => {
  const failures = []
  const present = new Set(files)
  const name = manifest.name
  const leaves = exportLeaves(manifest.exports)
  if (leaves.length === 0)
    failures.push(`${name}: package.json has no \`exports\`; declare the entry points.`)
  const blockedPatterns = leaves.filter((leaf) => leaf.target === null).map((leaf) => leaf.subpath)
  const isBlocked = (subpath) =>
    blockedPatterns.some((pattern) =>
      pattern.includes("*") ? patternRegExp(pattern).test(subpath) : pattern === subpath,
    )
  const entries = new Map() // subpath -> set of conditions
  const blocked = []
  for (const leaf of leaves) {
    if (leaf.target === null) {
      if (leaf.subpath.includes("*")) {
        const targetLeaf = leaves.find((other) => other.target !== null && other.subpath.includes("*"))
        if (targetLeaf !== undefined) {
          const targetRe = patternRegExp(normalize(targetLeaf.target))
          const example = files
            .map((file) => targetRe.exec(file)?.[1])
            .find((stem) => stem !== undefined && patternRegExp(leaf.subpath).test(`./${stem}`))
          if (example !== undefined) blocked.push(`./${example}`)
        }
      } else blocked.push(leaf.subpath)
      continue
    }
    if (!leaf.target.startsWith("./")) {
      failures.push(`${name}: exports["${leaf.subpath}"] target ${leaf.target} must start with "./".`)
      continue
    }
    const target = normalize(leaf.target)
    if (leaf.subpath.includes("*")) {
      const targetRe = patternRegExp(target)
      const matched = files.map((file) => targetRe.exec(file)?.[1]).filter((stem) => stem !== undefined)
      if (matched.length === 0) {
        failures.push(
          `${name}: exports["${leaf.subpath}"] (${leaf.condition}) -> ${leaf.target} matches no file.`,
        )
      }
      for (const stem of matched) {
        const subpath = leaf.subpath.replace("*", stem)
        if (isBlocked(subpath)) continue
        if (!entries.has(subpath)) entries.set(subpath, new Set())
        entries.get(subpath).add(leaf.condition)
      }
    } else {
      if (!present.has(target)) {
        failures.push(
          `${name}: exports["${leaf.subpath}"] (${leaf.condition}) -> ${leaf.target} is not in the tarball.`,
        )
      }
      if (!entries.has(leaf.subpath)) entries.set(leaf.subpath, new Set())
      entries.get(leaf.subpath).add(leaf.condition)
    }
  }
  for (const field of ["main", "types", "module"]) {
    const target = manifest[field]
    if (target !== undefined && !present.has(normalize(target))) {
      failures.push(`${name}: "${field}": ${target} is not in the tarball.`)
    }
  }
  // A pattern expanded over its `types` files yields every .d.ts; only subpaths with a run-time condition
  // are entry points to import (a .d.ts-only match such as a types-only module is still type-checked).
  return { failures, entries, blocked }
}

const dependencySections = ["dependencies", "peerDependencies", "optionalDependencies", "devDependencies"]

const parseVersion = (text) => {
  const match = /^(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$/.exec(text)
  return match === null ? undefined : { major: +match[1], minor: +match[2], patch: +match[3], pre: match[4] }
}

const compare = (a, b) => a.major - b.major || a.minor - b.minor || a.patch - b.patch

/**
 * Whether `version` satisfies `range` for the forms pnpm writes for workspace ranges (`^x.y.z`, `~x.y.z`,
 * `x.y.z`); undefined for any other form.
 */
export const satisfies = (version, range) => {
  const v = parseVersion(version)
  const match = /^([\^~]?)(\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?)$/.exec(range.trim())
  if (v === undefined || match === null) return undefined
  const r = parseVersion(match[2])
  if (match[1] === "") return compare(v, r) === 0 && v.pre === r.pre
  if (compare(v, r) < 0 || (v.pre !== undefined && compare(v, r) !== 0)) return false
  if (match[1] === "~") return v.major === r.major && v.minor === r.minor
  if (r.major > 0) return v.major === r.major
  if (r.minor > 0) return v.major === 0 && v.minor === r.minor
  return v.major === 0 && v.minor === 0 && v.patch === r.patch
}

/**
 * Checks a packed manifest. `siblings` maps every packed package name to its version; `root` is the root
 * package.json. Returns `{ failures, warnings }`.
 */
export const checkManifest = (manifest, siblings, root) => {
  const failures = []
  const warnings = []
  const name = manifest.name ?? "(unnamed)"
  const fail = (message) => failures.push(`${name}: ${message}`)
  if (
    typeof manifest.name !== "string" ||
    !/^(@[a-z0-9-~][a-z0-9-._~]*\/)?[a-z0-9-~][a-z0-9-._~]*$/.test(name)
  ) {
    fail("`name` is missing or not a valid npm package name.")
  }
  if (typeof manifest.version !== "string" || parseVersion(manifest.version) === undefined) {
    fail(`\`version\` ${JSON.stringify(manifest.version)} is not a semantic version.`)
  }
  if (manifest.private === true)
    fail('is `"private": true` and cannot be published; it should not be packed.')
  if (typeof manifest.description !== "string" || manifest.description.trim() === "") {
    fail("`description` is missing; npm search and the package page show it.")
  }
  if (typeof manifest.license !== "string" || manifest.license.trim() === "") {
    fail('`license` is missing; set "MIT" like every awa package.')
  } else if (root.license !== undefined && manifest.license !== root.license) {
    fail(`\`license\` is ${manifest.license}, the root says ${root.license}.`)
  }
  if (manifest.type !== "module") fail('`type` must be "module": the packages are ES modules only.')
  const wantedNode = root.engines?.node
  if (manifest.engines?.node === undefined)
    fail("`engines.node` is missing; declare the Node range supported.")
  else if (wantedNode !== undefined && manifest.engines.node !== wantedNode) {
    fail(`\`engines.node\` is ${manifest.engines.node} but the root declares ${wantedNode}; keep them equal.`)
  }
  if (name.startsWith("@") && manifest.publishConfig?.access !== "public") {
    fail(
      'a scoped package publishes as restricted unless `publishConfig: { "access": "public" }` says otherwise; add it.',
    )
  }
  if (root.repository !== undefined) {
    if (manifest.repository === undefined)
      fail("`repository` is missing (the root declares one); add it with `directory`.")
  } else if (manifest.repository === undefined) {
    warnings.push(
      `${name}: no \`repository\` (nor in the root package.json); add one once the public URL exists.`,
    )
  }
  if (manifest.files === undefined) fail("`files` is missing; without it npm packs everything in the folder.")
  for (const script of ["preinstall", "install", "postinstall"]) {
    if (manifest.scripts?.[script] !== undefined) {
      fail(`has an \`${script}\` script, which would run on every user's install; remove it.`)
    }
  }
  for (const section of dependencySections) {
    for (const [dep, range] of Object.entries(manifest[section] ?? {})) {
      if (/^(workspace|catalog|link|file|portal):/.test(range)) {
        fail(
          `${section}.${dep} is still "${range}" in the packed manifest; publish with pnpm, which rewrites it.`,
        )
        continue
      }
      const sibling = siblings.get(dep)
      if (sibling === undefined || section === "devDependencies") continue
      const ok = satisfies(sibling, range)
      if (ok === false) {
        fail(`${section}.${dep} is "${range}", which ${dep}@${sibling} (packed beside it) does not satisfy.`)
      } else if (ok === undefined) {
        warnings.push(`${name}: ${section}.${dep} is "${range}"; not checked against ${dep}@${sibling}.`)
      }
    }
  }
  return { failures, warnings }
}

// ---------------------------------------------------------------------------------------------------------
// The run

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..")

// A user's shell: none of the package manager's or vitest's variables from the run that started us.
const userEnv = Object.fromEntries(
  Object.entries(process.env).filter(
    ([name]) => !/^(npm_|pnpm_|PNPM_|VITEST|TURBO_)/i.test(name) && name !== "NODE_OPTIONS",
  ),
)

const run = (cmd, args, cwd, { quiet = true } = {}) => {
  const result = spawnSync(cmd, args, { cwd, env: userEnv, encoding: "utf8", maxBuffer: 64 * 1024 * 1024 })
  if (result.error) throw new Error(`${cmd} could not start: ${result.error.message}`)
  if (!quiet || result.status !== 0) process.stderr.write(`${result.stdout ?? ""}${result.stderr ?? ""}`)
  return result
}

/** Lists a tarball: paths under package/ stripped of that prefix, with their modes. */
const listTarball = (tarball) => {
  const result = run("tar", ["-tvzf", tarball], root)
  if (result.status !== 0) throw new Error(`tar could not list ${tarball}`)
  const modes = new Map()
  const sizes = new Map()
  for (const line of result.stdout.split("\n")) {
    const match = /^([-dl])([rwxsStT-]{9})\s.*?\spackage\/(.+)$/.exec(line)
    if (match === null || match[1] !== "-") continue
    const size = /\s(\d+)\s+\d{4}-\d\d-\d\d\s/.exec(line)
    sizes.set(match[3], size === null ? 0 : Number(size[1]))
    const bits = match[2]
    let mode = 0
    for (let i = 0; i < 9; i++)
      if (bits[i] !== "-" && bits[i] !== "S" && bits[i] !== "T") mode |= 1 << (8 - i)
    modes.set(match[3], mode)
  }
  const unpacked = [...sizes.values()].reduce((sum, size) => sum + size, 0)
  return { files: [...modes.keys()].sort(), modes, unpacked }
}

const main = () => {
  const args = process.argv.slice(2)
  const keep = args.includes("--keep")
  const rootManifest = JSON.parse(readFileSync(join(root, "package.json"), "utf8"))
  const failures = []
  const warnings = []

  if (!args.includes("--no-build")) {
    console.log("release-dry: pnpm run build")
    if (run("pnpm", ["run", "build"], root).status !== 0) {
      console.error("release-dry: the build failed; fix it first.")
      process.exit(1)
    }
  }

  const packages = workspacePackageDirs(root)
    .map((dir) => ({ dir, manifest: JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) }))
    .filter(({ manifest }) => manifest.private !== true)
  if (packages.length === 0) {
    console.error("release-dry: no publishable package found under the workspace globs.")
    process.exit(1)
  }

  const work = mkdtempSync(join(tmpdir(), "awa-release-dry-"))
  chmodSync(work, 0o755)
  const tarballDir = join(work, "tarballs")
  const extractDir = join(work, "extracted")
  mkdirSync(tarballDir)
  mkdirSync(extractDir)

  const packed = []
  for (const { dir, manifest } of packages) {
    const result = run("pnpm", ["pack", "--json", "--pack-destination", tarballDir], dir)
    if (result.status !== 0) {
      failures.push(`${manifest.name}: pnpm pack failed (output above).`)
      continue
    }
    const info = JSON.parse(result.stdout.slice(result.stdout.indexOf("{")))
    const tarball = info.filename
    const { files, modes, unpacked } = listTarball(tarball)
    const into = join(extractDir, manifest.name.replace("/", "+"))
    mkdirSync(into, { recursive: true })
    if (run("tar", ["-xzf", tarball, "-C", into], root).status !== 0)
      throw new Error(`cannot extract ${tarball}`)
    const packageRoot = join(into, "package")
    const packedManifest = JSON.parse(readFileSync(join(packageRoot, "package.json"), "utf8"))
    packed.push({
      name: manifest.name,
      dir,
      tarball,
      files,
      modes,
      packageRoot,
      manifest: packedManifest,
      info,
      unpacked,
    })
  }
  const siblings = new Map(packed.map((entry) => [entry.name, entry.manifest.version]))

  const importPlan = [] // { name, subpath, runtime: boolean, types: boolean }
  const blockedPlan = []
  for (const entry of packed) {
    const read = (file) => readFileSync(join(entry.packageRoot, file), "utf8")
    failures.push(...checkFileList(entry.files, entry.manifest, entry.modes))
    failures.push(...checkSourceMaps(entry.files, entry.name, read))
    const manifestResult = checkManifest(entry.manifest, siblings, rootManifest)
    failures.push(...manifestResult.failures)
    warnings.push(...manifestResult.warnings)
    for (const file of ["README.md", "LICENSE"]) {
      if (entry.files.includes(file) && read(file).trim() === "")
        failures.push(`${entry.name}: ${file} is empty.`)
    }
    for (const [bin, target] of Object.entries(binEntries(entry.manifest))) {
      const path = normalize(target)
      if (entry.files.includes(path) && !read(path).startsWith("#!")) {
        failures.push(`${entry.name}: bin "${bin}" (${target}) has no shebang line (#!/usr/bin/env node).`)
      }
    }
    const exportsResult = resolveExports(entry.manifest, entry.files)
    failures.push(...exportsResult.failures)
    const binTargets = new Set(Object.values(binEntries(entry.manifest)).map(normalize))
    for (const [subpath, conditions] of exportsResult.entries) {
      if (subpath.endsWith(".json")) continue
      const runtime = [...conditions].some((condition) => condition !== "types")
      const specifier = subpath === "." ? entry.name : `${entry.name}/${subpath.slice(2)}`
      // The bin module runs the CLI when imported; the bin check below runs it with --version instead.
      const isBin = [...binTargets].some((target) => target === `dist/${subpath.slice(2)}.js`)
      // Only subpaths whose run-time target exists are imported (a pattern matches every .d.ts too).
      const runtimeTarget = runtime && entry.files.some((file) => file === `dist/${subpath.slice(2)}.js`)
      importPlan.push({
        name: entry.name,
        specifier,
        runtime: !isBin && (subpath === "." || runtimeTarget),
        types: conditions.has("types"),
      })
    }
    for (const subpath of exportsResult.blocked) blockedPlan.push(`${entry.name}/${subpath.slice(2)}`)
    console.log(
      `release-dry: ${entry.name}@${entry.manifest.version}: ${entry.files.length} files, ` +
        `${(entry.info.size / 1024).toFixed(1)} kB packed, ${(entry.unpacked / 1024).toFixed(1)} kB unpacked`,
    )
  }

  if (!args.includes("--skip-install") && failures.length === 0) {
    failures.push(...installAndImport(work, packed, importPlan, blockedPlan))
  } else if (failures.length > 0) {
    console.log("release-dry: skipping the install step until the tarball checks pass")
  }

  for (const warning of warnings) console.log(`release-dry: note: ${warning}`)
  if (failures.length > 0) {
    for (const failure of failures) console.error(`  FAIL: ${failure}`)
    console.error(`release-dry: ${failures.length} problem(s); the tarballs are kept in ${tarballDir}`)
    process.exit(1)
  }
  console.log(
    `release-dry: ${packed.length} packages would publish cleanly ` +
      `(${importPlan.filter((entry) => entry.runtime).length} entry points imported, ` +
      `${importPlan.filter((entry) => entry.types).length} type-checked).`,
  )
  if (keep) console.log(`release-dry: kept ${work}`)
  else rmSync(work, { recursive: true, force: true })
}

/** Installs every tarball in a clean npm project and imports / type-checks every entry point there. */
const installAndImport = (work, packed, importPlan, blockedPlan) => {
  const failures = []
  const project = join(work, "consumer")
  mkdirSync(project)
  const tarballs = Object.fromEntries(packed.map((entry) => [entry.name, `file:${entry.tarball}`]))
  // Peer dependencies outside the workspace (e.g. vitest for @awa/testing's vitest entry points) are
  // installed at their declared ranges so every entry point can load; typescript and @types/node type-check.
  const peers = {}
  for (const entry of packed) {
    for (const [dep, range] of Object.entries(entry.manifest.peerDependencies ?? {})) {
      if (tarballs[dep] === undefined) peers[dep] = range
    }
  }
  const rootDev = JSON.parse(readFileSync(join(root, "package.json"), "utf8")).devDependencies ?? {}
  const manifest = {
    name: "awa-release-dry-consumer",
    private: true,
    type: "module",
    dependencies: {
      ...tarballs,
      ...peers,
      typescript: rootDev.typescript ?? "5.9.3",
      // What a user's project has; ^22 because vitest 5's optional peer asks for it.
      "@types/node": "^22.19.0",
    },
    overrides: tarballs,
  }
  writeFileSync(join(project, "package.json"), `${JSON.stringify(manifest, null, 2)}\n`)
  console.log(`release-dry: npm install in ${project}`)
  const install = run("npm", ["install", "--no-audit", "--no-fund", "--loglevel=error"], project)
  if (install.status !== 0) return ["npm install of the tarballs failed (output above)."]

  // Node imports every run-time entry point and expects every blocked subpath to be refused.
  const runtimeSpecifiers = importPlan.filter((entry) => entry.runtime).map((entry) => entry.specifier)
  const probe = `
const failures = []
for (const specifier of ${JSON.stringify(runtimeSpecifiers)}) {
  try { await import(specifier) } catch (error) { failures.push(specifier + ": " + (error?.message ?? error)) }
}
for (const specifier of ${JSON.stringify(blockedPlan)}) {
  try { await import(specifier); failures.push(specifier + ": imported, but exports blocks it (null)") }
  catch (error) { if (error?.code !== "ERR_PACKAGE_PATH_NOT_EXPORTED") failures.push(specifier + ": " + error?.code) }
}
console.log(JSON.stringify(failures))
process.exit(0)
`
  writeFileSync(join(project, "probe.mjs"), probe)
  const imported = run("node", ["probe.mjs"], project)
  let importFailures = []
  try {
    importFailures = JSON.parse(imported.stdout.trim().split("\n").pop())
  } catch {
    importFailures = [`the import probe crashed: ${imported.stderr}`]
  }
  for (const failure of importFailures) failures.push(`import from the installed tarball failed: ${failure}`)

  // tsc resolves every entry point's types the way a user's NodeNext project does.
  const typeSpecifiers = importPlan.filter((entry) => entry.types).map((entry) => entry.specifier)
  const typeFile = typeSpecifiers
    .map((specifier, index) => `import type * as entry${index} from ${JSON.stringify(specifier)}`)
    .concat(typeSpecifiers.map((_, index) => `export type Entry${index} = typeof entry${index}`))
    .join("\n")
  writeFileSync(join(project, "types.ts"), `${typeFile}\n`)
  writeFileSync(
    join(project, "tsconfig.json"),
    `${JSON.stringify(
      {
        compilerOptions: {
          target: "ES2022",
          module: "NodeNext",
          moduleResolution: "NodeNext",
          strict: true,
          noEmit: true,
          skipLibCheck: false,
          types: ["node"],
        },
        files: ["types.ts"],
      },
      null,
      2,
    )}\n`,
  )
  const tsc = run(join(project, "node_modules", ".bin", "tsc"), ["-p", "tsconfig.json"], project)
  if (tsc.status !== 0) {
    failures.push(
      "tsc could not type-check the entry points from the installed tarballs (errors above): a `types` " +
        "target is missing or a published declaration references a package the manifest does not declare.",
    )
  }

  for (const entry of packed) {
    for (const bin of Object.keys(binEntries(entry.manifest))) {
      const linked = join(project, "node_modules", ".bin", bin)
      if (!existsSync(linked)) {
        failures.push(`${entry.name}: bin "${bin}" was not linked into node_modules/.bin by npm install.`)
        continue
      }
      const version = run(linked, ["--version"], project)
      if (version.status !== 0 || !version.stdout.includes(entry.manifest.version)) {
        failures.push(
          `${entry.name}: \`${bin} --version\` from the installed tarball exited ${version.status} printing ` +
            `${JSON.stringify(version.stdout.trim())}; expected ${entry.manifest.version}.`,
        )
      }
    }
  }
  console.log(
    `release-dry: installed ${packed.length} tarballs; imported ${runtimeSpecifiers.length} entry points, ` +
      `refused ${blockedPlan.length} blocked subpaths, type-checked ${typeSpecifiers.length}`,
  )
  return failures
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    main()
  } catch (error) {
    console.error(`release-dry: ${error instanceof Error ? error.message : error}`)
    process.exit(2)
  }
}
