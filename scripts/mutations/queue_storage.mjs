// Deliberate mistakes in the queue-storage engine for `pnpm mutation --engine queue_storage`, in the same
// shape as canonical.mjs: { id, mistake, file, search, replace }, each `search` occurring exactly once in a
// file under packages/runtime/src. Empty until that engine exists: add entries for its real code (the
// mistakes of issue 8, item 6, translated to its statements), not for code that does not exist yet.
export default []
