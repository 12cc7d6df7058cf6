// The engine-invariant contract for the engine AWA_TEST_ENGINE names (default canonical). With
// AWA_TEST_DB_MODE set (as the CI matrix does, see scripts/contract-matrix.mjs) it runs in that mode only;
// without it, the regular test run covers both modes.
import { testDbModeFromEnv, testDbModes } from "../src/TestDatabases.js"
import { testEngineFromEnv } from "../src/TestEngine.js"
import { registerEngineContract } from "../src/vitest/EngineContract.js"

const engine = testEngineFromEnv()
const modes = process.env.AWA_TEST_DB_MODE ? [testDbModeFromEnv()] : testDbModes

for (const mode of modes) registerEngineContract({ engine, mode })
