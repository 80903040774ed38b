/** The longest a timer can wait (Node clamps a longer delay to 1 ms and warns on stderr): every timeout's bound. */
export const MAX_TIMEOUT_MS = 2 ** 31 - 1;

/** How long a call waits for its answer unless told otherwise: the client's `timeoutMs` default, everywhere. */
export const DEFAULT_TIMEOUT_MS = 10_000;
