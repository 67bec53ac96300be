export { decodeStream, decodeOne } from './decode.js';
export { encodeContent, encodeSigned, encodeStream, type ContentLayout } from './encode.js';
export { parseHeaders, encodeEntry, checkHeaderValue, isValidHeaderName, HeaderSyntaxError } from './headers.js';
export { MAX_BODY_SIZE, MAX_HEADERS_SIZE, MAX_SIGNATURE_SIZE } from './limits.js';
