/** The queue a job goes to when no queue is given. */
export const defaultQueue = "default"

/** The highest priority (claimed first). Priorities run from 1 (highest) to 4 (lowest). */
export const minPriority = 1

/** The lowest priority (claimed last). Priorities run from 1 (highest) to 4 (lowest). */
export const maxPriority = 4

/** The priority a job gets when none is given. */
export const defaultPriority = 2

/** How many attempts a job gets when its definition and insert options give no `maxAttempts`. */
export const defaultMaxAttempts = 25

/** The largest `maxAttempts` a job may have (the database enforces the same bound). */
export const maxMaxAttempts = 1000

/** The longest job kind, in characters (the database enforces the same bound). */
export const maxKindLength = 128

/** The longest queue name, in characters (the database enforces the same bound). */
export const maxQueueLength = 128

/** The most tags one job may carry (the database enforces the same bound). */
export const maxTagCount = 20

/** The longest tag, in characters. */
export const maxTagLength = 255

/** The largest encoded args a job may carry, in bytes of JSON text (1 MiB). */
export const maxArgsBytes = 1024 * 1024

/** The largest metadata object a job may carry, in bytes of JSON text (64 KiB). */
export const maxMetadataBytes = 64 * 1024

/** The longest per-attempt timeout, in milliseconds (about 24 days, the largest 32-bit millisecond count). */
export const maxAttemptTimeoutMs = 2_147_483_647

/** The longest error message kept per recorded error, in characters; longer messages are truncated. */
export const maxErrorMessageLength = 4000
