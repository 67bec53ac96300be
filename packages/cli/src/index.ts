export { main } from './main.js';
export { type Io, EXIT_FAILURE, EXIT_USAGE } from './output.js';
