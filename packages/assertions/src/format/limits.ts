/** snapd's limits (asserts.go): larger inputs are refused before any parsing work. */
export const MAX_HEADERS_SIZE = 128 * 1024;
export const MAX_BODY_SIZE = 2 * 1024 * 1024;
export const MAX_SIGNATURE_SIZE = 128 * 1024;
