// Structured JSON logs on stderr (stdout carries the configuration in mock mode).
import { type DestinationStream, destination, type Logger, pino } from 'pino';
import type { Config, Diagnostic } from './types.js';

export type { Logger };

export function createLogger(
  level: Config['logLevel'] = 'info',
  stream: DestinationStream = destination({ fd: 2, sync: true }),
): Logger {
  return pino({ level, base: { name: 'dispatcher' } }, stream);
}

/** One line per diagnostic: the object, the field and the reason (never a secret value). */
export function logDiagnostics(logger: Logger, diagnostics: readonly Diagnostic[]): void {
  for (const d of diagnostics) {
    const line = { object: d.object, field: d.field, reason: d.reason };
    if (d.severity === 'error') logger.error(line, 'left out');
    else if (d.severity === 'warning') logger.warn(line, 'left out');
    else logger.debug(line, 'not routed');
  }
}
