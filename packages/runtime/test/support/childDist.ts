// Child processes in crash and process tests run a package compiled from the current sources into a folder
// of their own (node_modules/.cache/<name>), not dist/: other packages' tests may be importing dist/ while
// this suite runs, and a test must not depend on a build having been run.
import { execFileSync } from "node:child_process"
import { createRequire } from "node:module"
import path from "node:path"
import { beforeAll } from "vitest"

/**
 * Registers a beforeAll that compiles the package at `packageDir` (its tsconfig.build.json, without
 * declarations or maps) into `node_modules/.cache/<name>` under it; returns that folder.
 */
export const useChildDist = (packageDir: string, name: string): string => {
  const childDist = path.join(packageDir, "node_modules", ".cache", name)
  beforeAll(() => {
    const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc")
    execFileSync(
      process.execPath,
      [
        tsc,
        ...["-p", "tsconfig.build.json", "--outDir", childDist],
        ...["--tsBuildInfoFile", path.join(childDist, ".tsbuildinfo"), "--declaration", "false"],
        ...["--declarationMap", "false", "--sourceMap", "false"],
      ],
      { cwd: packageDir, stdio: "inherit" },
    )
  }, 120_000)
  return childDist
}
