#!/usr/bin/env node
// Keeps the code blocks of README.md, docs/*.md and packages/*/README.md true: every fenced block must carry
// a marker (see scripts/docs-blocks.mjs and the comment at the top of README.md), and the marked blocks are
// run. For each Markdown file with runnable blocks, the blocks run in order in a scratch folder, with
// DATABASE_URL naming a fresh, empty database of one real Postgres (embedded unless DATABASE_URL is set,
// as in the tests). `npm install` lines install awa's packages from tarballs packed from this checkout
// (they are not on the registry yet); everything else runs as written.
//
// Usage (after `pnpm build`):
//   node scripts/docs-check.mjs [--markers-only] [--node VERSION|min] [--keep] [FILE.md ...]
//   --markers-only  only check that every block is marked and quotes match (fast; part of `pnpm lint`)
//   --node min      run everything under the minimum Node of the root package.json's engines (a Node
//                   binary from the npm registry's node-linux-<arch> package, cached under node_modules)
//   --keep          keep the scratch folder
// Exits 1 naming FILE:LINE of every unmarked or failing block.
import { spawn, spawnSync } from "node:child_process"
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  writeFileSync,
} from "node:fs"
import { createRequire } from "node:module"
import { tmpdir } from "node:os"
import { dirname, join, relative, resolve } from "node:path"
import { findBlocks, markerSyntax } from "./docs-blocks.mjs"
import { runUnderNode } from "./node-version.mjs"

const root = resolve(new URL("..", import.meta.url).pathname)
const say = (message) => console.log(`docs-check: ${message}`)
const die = (message) => {
  console.error(`docs-check: ${message}`)
  process.exit(1)
}
// --node: run this whole script again under that exact Node.
const args = runUnderNode(root, new URL(import.meta.url).pathname, process.argv.slice(2), say)
const markersOnly = args.includes("--markers-only")
const keep = args.includes("--keep")
const fileArgs = args.filter((arg) => !arg.startsWith("--"))

// The Markdown files whose blocks are checked.
const defaultFiles = () => {
  const files = ["README.md"]
  for (const file of readdirSync(join(root, "docs")).sort())
    if (file.endsWith(".md")) files.push(`docs/${file}`)
  for (const pkg of readdirSync(join(root, "packages")).sort())
    if (existsSync(join(root, "packages", pkg, "README.md"))) files.push(`packages/${pkg}/README.md`)
  return files
}
const files = fileArgs.length > 0 ? fileArgs.map((file) => relative(root, resolve(file))) : defaultFiles()

// 1. Every block is marked; quotes match their files.
const problems = []
const documents = []
for (const file of files) {
  const blocks = findBlocks(readFileSync(join(root, file), "utf8"))
  for (const block of blocks) {
    if (block.problem !== undefined) {
      problems.push(
        `${file}:${block.line}: the \`\`\`${block.info} block ${block.problem}. Put one of ${markerSyntax.join(", ")} on the line before it (see the comment at the top of README.md).`,
      )
    } else if (block.file !== undefined) {
      const quoted = join(root, block.file)
      if (!existsSync(quoted))
        problems.push(`${file}:${block.line}: quotes ${block.file}, which does not exist`)
      else if (`${block.code}\n` !== readFileSync(quoted, "utf8"))
        problems.push(
          `${file}:${block.line}: quotes ${block.file} but differs from it; copy the file in again`,
        )
    }
  }
  documents.push({ file, blocks })
}
const count = documents.reduce((n, d) => n + d.blocks.length, 0)
if (problems.length > 0) {
  for (const problem of problems) console.error(`docs-check: ${problem}`)
  process.exit(1)
}
const runnable = documents.filter((d) =>
  d.blocks.some((b) => b.marker !== undefined && b.marker.kind !== "skip"),
)
if (markersOnly || runnable.length === 0) {
  say(`${count} code blocks in ${files.length} files are marked${markersOnly ? "" : "; none runs"}`)
  process.exit(0)
}

// 2. Run them.
say(`node ${process.version}; ${count} code blocks in ${files.length} files`)
const packages = readdirSync(join(root, "packages")).sort()
for (const pkg of packages) {
  if (!existsSync(join(root, "packages", pkg, "dist", "index.js")))
    die(`packages/${pkg}/dist is missing; run \`pnpm build\` first.`)
}
const work = mkdtempSync(join(tmpdir(), "awa-docs-"))
// As root, the embedded Postgres runs as an unprivileged user; keep the folder as open as a project folder.
chmodSync(work, 0o755)

// A user's shell: none of the package manager's variables from the run that started us.
const userEnv = Object.fromEntries(
  Object.entries(process.env).filter(
    ([name]) =>
      !/^(npm_|pnpm_|PNPM_|VITEST|TURBO_)/i.test(name) &&
      !["NODE_OPTIONS", "DATABASE_URL", "PGMQ_DATABASE_URL"].includes(name),
  ),
)
Object.assign(userEnv, {
  npm_config_audit: "false",
  npm_config_fund: "false",
  npm_config_update_notifier: "false",
  npm_config_prefer_offline: "true",
})

const tarballs = packTarballs()
const { startPostgres } = await import(join(root, "packages", "testing", "dist", "index.js"))
const pg = createRequire(join(root, "packages", "testing", "package.json"))("pg")
const server = await startPostgres({
  env: { ...process.env, AWA_TEST_PROVIDER: process.env.AWA_TEST_PROVIDER },
})
const failures = []
try {
  for (const document of runnable) await runDocument(document)
} finally {
  await server.stop()
}
if (failures.length > 0) {
  for (const failure of failures) console.error(`docs-check: FAILED ${failure}`)
  console.error(`docs-check: the scratch folder is kept in ${work}`)
  process.exit(1)
}
if (keep) say(`passed; the scratch folder is kept in ${work}`)
else rmSync(work, { recursive: true, force: true })
say(`passed: ${runnable.map((d) => d.file).join(", ")} ran as written under Node ${process.version}`)

function packTarballs() {
  const dir = join(work, "tarballs")
  mkdirSync(dir)
  const made = {}
  for (const pkg of packages) {
    const pkgDir = join(root, "packages", pkg)
    const name = JSON.parse(readFileSync(join(pkgDir, "package.json"), "utf8")).name
    const before = new Set(readdirSync(dir))
    const result = spawnSync("pnpm", ["pack", "--pack-destination", dir], { cwd: pkgDir, encoding: "utf8" })
    const tgz = readdirSync(dir).filter((f) => !before.has(f) && f.endsWith(".tgz"))
    if (result.status !== 0 || tgz.length !== 1)
      die(`pnpm pack failed for ${name}: ${result.stdout}${result.stderr}`)
    made[name] = join(dir, tgz[0])
  }
  return made
}

// `npm install @awa/runtime ...` installs the packed tarball: awa is not on the registry yet. Before such a
// line, npm overrides in the project's package.json make awa's own dependencies on each other (e.g.
// @awa/runtime -> @awa/migrator) resolve to the tarballs too.
function withTarballs(script) {
  // Only packages others depend on: an override for @awa/testing (an optional peer of @awa/cli) makes npm
  // warn about its tarball.
  const overridable = Object.fromEntries(Object.entries(tarballs).filter(([name]) => name !== "@awa/testing"))
  // Relative paths, written the way npm saves a tarball dependency, so an override never conflicts with
  // the same package installed directly.
  const setOverrides = `node -e 'const fs = require("node:fs"), path = require("node:path"); const p = fs.existsSync("package.json") ? JSON.parse(fs.readFileSync("package.json", "utf8")) : {}; p.overrides = p.overrides ?? {}; for (const [n, f] of Object.entries(${JSON.stringify(overridable)})) p.overrides[n] = "file:" + path.relative(process.cwd(), f); fs.writeFileSync("package.json", JSON.stringify(p, null, 2))'`
  return script
    .split("\n")
    .map((line) => {
      if (!/^\s*(npm\s+(install|i|add)|pnpm\s+add|yarn\s+add)\b/.test(line) || !/@awa\//.test(line))
        return line
      const replaced = line.replace(/(^|\s)(@awa\/[a-z-]+)(@\S+)?(?=\s|$)/g, (whole, space, name) =>
        tarballs[name] === undefined ? whole : `${space}${tarballs[name]}`,
      )
      return `${setOverrides}\n${replaced}`
    })
    .join("\n")
}

function nearestNodeModules(from) {
  for (let dir = from; dir !== dirname(dir); dir = dirname(dir)) {
    if (existsSync(join(dir, "node_modules"))) return join(dir, "node_modules")
  }
  return undefined
}

async function runDocument({ file, blocks }) {
  const slug = file.replace(/[^a-zA-Z0-9]+/g, "-").toLowerCase()
  const database = `docs_${slug.replace(/-/g, "_")}`.slice(0, 60)
  const admin = new pg.Client({ connectionString: server.adminUrl })
  await admin.connect()
  await admin.query(`drop database if exists "${database}"`)
  await admin.query(`create database "${database}"`)
  await admin.end()
  const url = new URL(server.adminUrl)
  url.pathname = `/${database}`
  const env = { ...userEnv, DATABASE_URL: url.toString() }
  let cwd = join(work, slug)
  mkdirSync(cwd, { recursive: true })
  const state = join(work, `${slug}.cwd`)
  const typecheck = []
  // The blocks' `node` must be the one this check runs under (with --node, the fetched one).
  const blockNode = spawnSync("node", ["--version"], { cwd, env, encoding: "utf8" }).stdout?.trim()
  if (blockNode !== process.version) {
    failures.push(
      `${file}: \`node\` on the PATH is ${blockNode || "missing"}, not ${process.version}; blocks were not run`,
    )
    return
  }
  say(`${file}: running its blocks in ${cwd} with a fresh database "${database}"`)
  for (const block of blocks) {
    const { marker } = block
    if (marker === undefined || marker.kind === "skip") continue
    const where = `${file}:${block.line}`
    const isShell = ["sh", "bash", "shell"].includes(block.lang)
    const isTs = ["ts", "typescript"].includes(block.lang)
    let error
    if (marker.kind === "save") {
      const target = join(cwd, marker.path)
      mkdirSync(dirname(target), { recursive: true })
      writeFileSync(target, `${block.code}\n`)
      if (/\.[cm]?tsx?$/.test(target)) typecheck.push({ path: target, where })
      say(`${where}: saved ${marker.path}`)
      continue
    }
    if (block.lang === "sql") {
      say(`${where}: sql on ${database}`)
      const client = new pg.Client({ connectionString: env.DATABASE_URL })
      try {
        await client.connect()
        await client.query(block.code)
      } catch (cause) {
        error = `the sql block failed: ${cause.message}`
      } finally {
        await client.end().catch(() => {})
      }
    } else if (isShell) {
      const script = `set -euo pipefail\n${withTarballs(block.code)}\npwd > ${JSON.stringify(state)}\n`
      say(`${where}: sh (in ${cwd})\n${block.code.replace(/^/gm, "  $ ")}`)
      const status = await runShell(
        script,
        cwd,
        env,
        marker.kind === "run-until" ? marker.pattern : undefined,
      )
      if (status.error !== undefined) error = status.error
      else if (status.code !== 0) error = `the sh block exited with ${status.code}`
      else cwd = readFileSync(state, "utf8").trim()
    } else {
      // .mts / .mjs: ES modules (top-level await) even in a folder without "type": "module".
      const path = join(cwd, `docs-block-${slug}-${block.line}.${isTs ? "mts" : "mjs"}`)
      writeFileSync(path, `${block.code}\n`)
      if (isTs) typecheck.push({ path, where })
      if (marker.kind === "typecheck") continue
      say(`${where}: ${isTs ? "tsx" : "node"} ${relative(cwd, path)}`)
      let command = ["node", [path]]
      if (isTs) {
        const modules = nearestNodeModules(cwd)
        const tsx = modules && join(modules, "tsx", "dist", "cli.mjs")
        if (tsx === undefined || !existsSync(tsx)) {
          error =
            "ts blocks run with tsx, which is not installed here: install it in an earlier block of this file (npm install --save-dev tsx)"
        }
        command = ["node", [tsx, path]]
      }
      if (error === undefined) {
        const result = spawnSync(command[0], command[1], { cwd, env, stdio: "inherit", timeout: 180_000 })
        if (result.status !== 0)
          error = `the ${block.lang} block ${result.signal ? `was killed by ${result.signal}` : `exited with ${result.status}`}`
      }
    }
    if (error !== undefined) {
      failures.push(`${where}: ${error} (later blocks of ${file} were not run)`)
      break
    }
  }
  if (typecheck.length > 0) {
    const modules = [...new Set(typecheck.map((t) => nearestNodeModules(dirname(t.path))).filter(Boolean))]
    const tsc = [...modules, join(root, "node_modules")]
      .map((m) => join(m, "typescript", "bin", "tsc"))
      .find((p) => existsSync(p))
    const config = join(work, `tsconfig.${slug}.json`)
    writeFileSync(
      config,
      JSON.stringify({
        compilerOptions: {
          target: "ES2022",
          module: "NodeNext",
          moduleResolution: "NodeNext",
          lib: ["ES2023", "DOM"],
          strict: true,
          noEmit: true,
          skipLibCheck: true,
          types: ["node"],
          // The project's own types first; this checkout's @types/node when a file installs none.
          typeRoots: [...modules, join(root, "node_modules")].map((m) => join(m, "@types")),
        },
        files: typecheck.map((t) => t.path),
      }),
    )
    say(`${file}: typechecking ${typecheck.length} TypeScript blocks`)
    const result = spawnSync("node", [tsc, "-p", config, "--pretty", "false"], {
      cwd: work,
      encoding: "utf8",
      env,
    })
    if (result.status !== 0) {
      // Name the Markdown line of each error (tsc names files relative to its working folder).
      let output = `${result.stdout}${result.stderr}`
      for (const t of typecheck) {
        const name = relative(work, t.path)
        output = output.split(name).join(`${t.where} [${name}]`)
      }
      failures.push(`${file}: TypeScript errors:\n${output.trim()}`)
    }
  }
}

// The processes of process group `pgid` to interrupt: the innermost Node processes (those with no Node
// process below them), i.e. the program a block is running rather than the shell and the `npx` wrapper
// waiting for it, or tsx's esbuild helper beside it; without Node processes, the ones with no children.
// Linux /proc; empty elsewhere (then the whole group is interrupted).
function leavesOfGroup(pgid) {
  const members = new Map()
  try {
    for (const entry of readdirSync("/proc")) {
      if (!/^\d+$/.test(entry)) continue
      try {
        const stat = readFileSync(`/proc/${entry}/stat`, "utf8")
        const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
        if (Number(fields[2]) !== pgid) continue
        let isNode = false
        try {
          isNode = /(^|\/)node$/.test(readlinkSync(`/proc/${entry}/exe`))
        } catch {}
        members.set(Number(entry), { parent: Number(fields[1]), isNode })
      } catch {}
    }
  } catch {
    return []
  }
  // Those of `candidates` that are no ancestor of another candidate.
  const innermost = (candidates) => {
    const ancestors = new Set()
    for (const pid of candidates) {
      for (let up = members.get(pid)?.parent; members.has(up); up = members.get(up).parent) ancestors.add(up)
    }
    return candidates.filter((pid) => !ancestors.has(pid))
  }
  const nodes = [...members.keys()].filter((pid) => members.get(pid).isNode)
  return innermost(nodes.length > 0 ? nodes : [...members.keys()])
}

// Runs a bash script in its own process group. With `until`, once the output matches, sends SIGINT to the
// program the block is running (as Ctrl-C would, without the wrappers around it reacting to it too); the
// script must then exit 0.
function runShell(script, cwd, env, until) {
  return new Promise((resolvePromise) => {
    const child = spawn("bash", ["-c", script], {
      cwd,
      env,
      detached: true,
      stdio: ["ignore", until === undefined ? "inherit" : "pipe", until === undefined ? "inherit" : "pipe"],
    })
    let seen = ""
    let interrupted = false
    // Without /proc the whole group gets SIGINT, and the shell and npx then end by it as well (130).
    let wholeGroup = false
    const timer = setTimeout(
      () => {
        try {
          process.kill(-child.pid, "SIGKILL")
        } catch {}
        resolvePromise({
          error: !until
            ? "still running after 10 minutes; killed"
            : interrupted
              ? "still running 3 minutes after it started (it did not exit on SIGINT); killed"
              : `the output did not match /${until.source}/ within 3 minutes; killed`,
        })
      },
      until ? 180_000 : 600_000,
    )
    const watch = (stream, sink) =>
      stream?.on("data", (chunk) => {
        sink.write(chunk)
        seen += chunk.toString()
        if (!interrupted && until.test(seen)) {
          interrupted = true
          const targets = leavesOfGroup(child.pid)
          say(
            `output matched /${until.source}/; sending SIGINT to ${targets.length > 0 ? `pid ${targets.join(", ")}` : "the block"}`,
          )
          try {
            wholeGroup = targets.length === 0
            if (wholeGroup) process.kill(-child.pid, "SIGINT")
            for (const pid of targets) process.kill(pid, "SIGINT")
          } catch {}
        }
      })
    if (until !== undefined) {
      watch(child.stdout, process.stdout)
      watch(child.stderr, process.stderr)
    }
    child.on("error", (error) => {
      clearTimeout(timer)
      resolvePromise({ error: `bash could not start: ${error.message}` })
    })
    child.on("close", (code, signal) => {
      clearTimeout(timer)
      if (until !== undefined && !interrupted)
        resolvePromise({ error: `exited (${code ?? signal}) before its output matched /${until.source}/` })
      else if (wholeGroup && (code === 130 || signal === "SIGINT")) resolvePromise({ code: 0 })
      else resolvePromise({ code: code ?? (signal ? `signal ${signal}` : 1) })
    })
  })
}
