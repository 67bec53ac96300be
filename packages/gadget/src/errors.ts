import { EdgeimageError } from '@edgeimage/assertions';

/** gadget.yaml breaks a rule: names the file, line and column, and the structure. */
export class GadgetError extends EdgeimageError {
  constructor(
    message: string,
    readonly file: string,
    readonly line?: number,
    readonly col?: number,
    readonly structure?: string,
    code = 'ERR_GADGET',
  ) {
    super(code, `${file}${line ? `:${line}${col ? `:${col}` : ''}` : ''}: ${structure ? `structure ${structure}: ` : ''}${message}`, { file, line, col, structure });
  }
}
