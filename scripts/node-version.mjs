// Runs a script under an exact Node version: the Node binary comes from the npm registry's
// node-<platform>-<arch> package (the same builds as nodejs.org), cached under node_modules/.cache/awa-node.
// Used by docs-check and example-check (`--node min` or `--node 20.19.0`) so CI tests the packages at the
// minimum Node their engines declare, whatever Node the machine has.
import { spawnSync } from "node:child_process"
import { existsSync, mkdirSync, readFileSync, rmSync } from "node:fs"
import { dirname, join } from "node:path"

/** The version `--node VALUE` asks for: "min" is the root package.json's `engines.node` (`>=X.Y[.Z]`). */
export const resolveNodeVersion = (root, value) => {
  if (value === "min") {
    const range = JSON.parse(readFileSync(join(root, "package.json"), "utf8")).engines?.node ?? ""
    const min = /^>=\s*(\d+)(?:\.(\d+))?(?:\.(\d+))?$/.exec(range.trim())
    if (min === null)
      throw new Error(`the root package.json's engines.node is "${range}"; --node min needs ">=X.Y[.Z]"`)
    return `${min[1]}.${min[2] ?? 0}.${min[3] ?? 0}`
  }
  if (!/^\d+\.\d+\.\d+$/.test(value ?? ""))
    throw new Error(`--node takes a version such as 20.19.0 or "min" (got "${value}")`)
  return value
}

/** The path of the `node` binary of `version`, fetched with `npm pack` on first use. */
export const fetchNode = (root, version, say) => {
  const platform = { linux: "linux", darwin: "darwin" }[process.platform]
  const arch = { x64: "x64", arm64: "arm64" }[process.arch]
  if (platform === undefined || arch === undefined)
    throw new Error(
      `the npm registry has no Node package for ${process.platform}-${process.arch}; run without --node`,
    )
  const name = `node-${platform}-${arch}`
  const dir = join(root, "node_modules", ".cache", "awa-node", `${name}-${version}`)
  const bin = join(dir, "package", "bin", "node")
  if (existsSync(bin)) return bin
  mkdirSync(dir, { recursive: true })
  say(`fetching Node ${version} from the npm registry (${name}@${version})`)
  const pack = spawnSync("npm", ["pack", `${name}@${version}`, "--silent", "--pack-destination", dir], {
    encoding: "utf8",
  })
  const tarball = pack.stdout?.trim().split("\n").pop()
  if (pack.status !== 0 || !tarball)
    throw new Error(
      `npm pack ${name}@${version} failed: ${(pack.stderr || pack.error?.message || "").trim()}`,
    )
  const untar = spawnSync("tar", ["xzf", join(dir, tarball), "-C", dir], { encoding: "utf8" })
  if (untar.status !== 0 || !existsSync(bin)) throw new Error(`could not unpack ${tarball}: ${untar.stderr}`)
  rmSync(join(dir, tarball), { force: true })
  return bin
}

/**
 * Handles `--node VALUE` in `args`: when this process is not already that Node, runs `script` again under it
 * (first on the PATH, so the `node` and `npm` it starts use it too) with the other arguments, and exits with
 * its status. Returns the arguments without `--node VALUE` when there is nothing to do.
 */
export const runUnderNode = (root, script, args, say) => {
  const index = args.indexOf("--node")
  if (index < 0) return args
  const rest = args.filter((_, i) => i !== index && i !== index + 1)
  let bin
  let version
  try {
    version = resolveNodeVersion(root, args[index + 1])
    if (process.version === `v${version}`) return rest
    bin = fetchNode(root, version, say)
  } catch (error) {
    console.error(`${error.message}`)
    process.exit(1)
  }
  say(`running under Node v${version} (${bin})`)
  const result = spawnSync(bin, [script, ...rest], {
    stdio: "inherit",
    env: { ...process.env, PATH: `${dirname(bin)}:${process.env.PATH}` },
  })
  process.exit(result.status ?? 1)
}
