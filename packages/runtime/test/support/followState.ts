// For tests about the default path, on which a process names no engine and follows the database's storage
// state: AWA_ENGINE (set by the engine passes of scripts/engine-tests.mjs) is removed around each test.
import { afterEach, beforeEach } from "vitest"

/** Registers hooks that unset AWA_ENGINE for each test of the file and restore it afterwards. */
export const followStorageState = (): void => {
  let saved: string | undefined
  beforeEach(() => {
    saved = process.env.AWA_ENGINE
    delete process.env.AWA_ENGINE
  })
  afterEach(() => {
    if (saved === undefined) delete process.env.AWA_ENGINE
    else process.env.AWA_ENGINE = saved
  })
}
