// Loads the module given to `awa worker --tasks` and collects the job handlers it exports.
import { existsSync, statSync } from "node:fs"
import { createRequire } from "node:module"
import { isAbsolute, join, resolve } from "node:path"
import { pathToFileURL } from "node:url"
import { isJobHandler, type JobHandler } from "@awa/runtime/JobHandler"
import { Data } from "effect"

/** The tasks module could not be loaded, or it exports no usable job handlers. */
export class TasksModuleError extends Data.TaggedError("TasksModuleError")<{
  readonly specifier: string
  readonly reason: string
}> {
  override get message(): string {
    return `Tasks module ${JSON.stringify(this.specifier)}: ${this.reason}`
  }
}

const howToExport =
  "Export handlers made with handle(definition, fn) from @awa/runtime/JobHandler: as named exports, as the default export, or as an array of them."

const looksLikeDefinition = (value: unknown): value is { kind: string } =>
  typeof value === "object" &&
  value !== null &&
  typeof (value as { kind?: unknown }).kind === "string" &&
  typeof (value as { decodeArgs?: unknown }).decodeArgs === "function"

/** Where to import the module from: a file path (relative to `cwd`) or a package specifier. */
const importTarget = (specifier: string, cwd: string): string => {
  const path = isAbsolute(specifier) ? specifier : resolve(cwd, specifier)
  if (existsSync(path)) {
    if (statSync(path).isDirectory()) {
      throw new TasksModuleError({
        specifier,
        reason: `${path} is a directory. Pass the module file itself (for example dist/tasks.js).`,
      })
    }
    return pathToFileURL(path).href
  }
  const relative = specifier.startsWith(".") || specifier.startsWith("/") || /\.[cm]?[jt]s$/.test(specifier)
  if (relative) {
    throw new TasksModuleError({
      specifier,
      reason: `no such file (looked for ${path}). Pass the path of a built JavaScript module (e.g. ./dist/tasks.js).`,
    })
  }
  // A package name resolves from the working directory (the user's project), not from the CLI's install.
  try {
    return pathToFileURL(createRequire(join(cwd, "noop.js")).resolve(specifier)).href
  } catch (error) {
    throw new TasksModuleError({
      specifier,
      reason: `is neither a file nor a package that resolves from ${cwd} (${error instanceof Error ? error.message.split("\n")[0] : String(error)}). Pass a file path such as ./dist/tasks.js.`,
    })
  }
}

/**
 * Imports the tasks module and returns the handlers it exports: named exports, the default export, and
 * arrays or plain objects of handlers among them. Throws `TasksModuleError` when the module is missing,
 * fails while loading, exports no handler, or exports two different handlers for one kind.
 */
export const loadTasksModule = async (
  specifier: string,
  cwd = process.cwd(),
): Promise<ReadonlyArray<JobHandler>> => {
  const target = importTarget(specifier, cwd)
  let module: Record<string, unknown>
  try {
    module = (await import(target)) as Record<string, unknown>
  } catch (error) {
    const detail = error instanceof Error ? error.message : String(error)
    // Node runs TypeScript only partly (type stripping from 22.18, never enums and the like) or not at all.
    const typescript = /\.[cm]?tsx?$/.test(specifier)
      ? ` A TypeScript module needs building or a loader: compile it with tsc and pass the .js file (e.g. --tasks ./dist/tasks.js), or load tsx first: NODE_OPTIONS="--import tsx" awa worker --tasks ${specifier}`
      : " Fix the module (or build it: awa worker runs JavaScript)."
    throw new TasksModuleError({
      specifier,
      reason: `failed while loading: ${detail.replace(/\.?\s*$/, ".")}${typescript}`,
    })
  }
  const handlers: Array<JobHandler> = []
  // Where each handler was found (e.g. `default[1]`), to name both exports when two handle the same kind.
  const foundAt = new Map<JobHandler, string>()
  const definitions: Array<string> = []
  const visit = (value: unknown, path: string, depth: number): void => {
    if (isJobHandler(value)) {
      if (handlers.includes(value)) return
      const clash = handlers.find((h) => h.definition.kind === value.definition.kind)
      if (clash !== undefined) {
        throw new TasksModuleError({
          specifier,
          reason: `exports two different handlers for job kind "${value.definition.kind}" (${foundAt.get(clash)} and ${path}); a worker runs one handler per kind. Export only one of them.`,
        })
      }
      handlers.push(value)
      foundAt.set(value, path)
      return
    }
    if (looksLikeDefinition(value)) {
      definitions.push(value.kind)
      return
    }
    if (depth >= 3 || typeof value !== "object" || value === null) return
    for (const [key, item] of Object.entries(value)) {
      visit(item, Array.isArray(value) ? `${path}[${key}]` : `${path}.${key}`, depth + 1)
    }
  }
  for (const [name, value] of Object.entries(module)) visit(value, name, 1)
  if (handlers.length === 0) {
    const found =
      definitions.length > 0
        ? `exports job definitions (${[...new Set(definitions)].join(", ")}) but no handlers for them.`
        : `exports no job handlers (exports: ${Object.keys(module).join(", ") || "none"}).`
    throw new TasksModuleError({ specifier, reason: `${found} ${howToExport}` })
  }
  return handlers
}
