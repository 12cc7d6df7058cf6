/**
 * The `container` provider: a Postgres container through testcontainers, used when a container runtime
 * answers. testcontainers is imported lazily so that projects (and machines) without it pay nothing.
 */
import type { PostgresServer } from "../PostgresServer.js"
import { PostgresServerError } from "../PostgresServerError.js"
import { settingsToFlags, testServerSettings } from "./ServerSettings.js"

/** The message testcontainers throws, within milliseconds, when no container runtime answers. */
export const noContainerRuntimeMessage = "Could not find a working container runtime strategy"

/** The outcome of {@link startContainerServer}: a running server, or why no runtime was usable. */
export type ContainerStartResult =
  | { readonly _tag: "Started"; readonly server: PostgresServer }
  | { readonly _tag: "NoRuntime"; readonly detail: string }

/** Options of {@link startContainerServer}. */
export interface ContainerServerOptions {
  readonly image: string
  readonly settings: Readonly<Record<string, string | number>>
}

const messageOf = (error: unknown): string => (error instanceof Error ? error.message : String(error))

/**
 * Starts a Postgres container from `options.image` when a container runtime answers; reports
 * `NoRuntime` (without throwing) when none does, and throws `ContainerStartFailed` when a runtime answered
 * but the container did not start.
 */
export const startContainerServer = async (
  options: ContainerServerOptions,
): Promise<ContainerStartResult> => {
  let testcontainers: typeof import("testcontainers")
  try {
    testcontainers = await import("testcontainers")
  } catch (cause) {
    return { _tag: "NoRuntime", detail: `testcontainers could not be loaded: ${messageOf(cause)}` }
  }
  try {
    await testcontainers.getContainerRuntimeClient()
  } catch (cause) {
    const detail = messageOf(cause)
    if (detail.includes(noContainerRuntimeMessage)) return { _tag: "NoRuntime", detail }
    return { _tag: "NoRuntime", detail: `container runtime check failed: ${detail}` }
  }

  try {
    const { PostgreSqlContainer } = await import("@testcontainers/postgresql")
    const container = await new PostgreSqlContainer(options.image)
      .withUsername("postgres")
      .withPassword("postgres")
      .withDatabase("postgres")
      .withCommand(["postgres", ...settingsToFlags({ ...testServerSettings, ...options.settings })])
      .start()
    const adminUrl = container.getConnectionUri()
    let stopping: Promise<void> | undefined
    return {
      _tag: "Started",
      server: {
        provider: "container",
        adminUrl,
        describe: `a ${options.image} container on ${container.getHost()}:${container.getPort()}`,
        stop: () => {
          stopping ??= container.stop().then(() => undefined)
          return stopping
        },
      },
    }
  } catch (cause) {
    throw new PostgresServerError({
      reason: "ContainerStartFailed",
      message:
        `A container runtime answered but the Postgres container (${options.image}) did not start: ` +
        `${messageOf(cause)}. Check the image name (AWA_TEST_PG_IMAGE) and that it can be pulled, or use ` +
        "AWA_TEST_PROVIDER=embedded to run an embedded server instead.",
      cause,
    })
  }
}
