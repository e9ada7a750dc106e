/**
 * Terminal helpers for the CLI: a usage error that exits with 2, and progress that draws a
 * bar on a terminal and prints plain lines when the output is piped.
 */
export class UsageError extends Error {
  override name = 'UsageError';
}

export interface ProgressReporter {
  update(done: number, total: number, label?: string): void;
  done(message?: string): void;
}

/** A progress bar on stderr when it is a terminal, otherwise one line per ~10% (or nothing with quiet). */
export function createProgress(
  title: string,
  { quiet = false, stream = process.stderr } = {},
): ProgressReporter {
  const started = Date.now();
  let lastDecile = -1;
  const tty = stream.isTTY === true;
  return {
    update(done, total, label) {
      if (quiet) return;
      const fraction = total > 0 ? done / total : 1;
      const elapsed = (Date.now() - started) / 1000;
      const eta = done > 0 ? (elapsed / done) * (total - done) : 0;
      if (tty) {
        const width = 30;
        const filled = Math.round(fraction * width);
        const bar = '#'.repeat(filled) + '-'.repeat(width - filled);
        stream.write(
          `\r${title} [${bar}] ${done}/${total} ${(fraction * 100).toFixed(0).padStart(3)}% ${elapsed.toFixed(1)}s, ${eta.toFixed(1)}s left${label ? ` ${label}` : ''}\x1b[K`,
        );
      } else {
        const decile = Math.floor(fraction * 10);
        if (decile !== lastDecile || done === total) {
          lastDecile = decile;
          stream.write(`${title}: ${done}/${total} (${elapsed.toFixed(1)}s)\n`);
        }
      }
    },
    done(message) {
      if (quiet) return;
      if (tty) stream.write('\r\x1b[K');
      if (message) stream.write(`${message}\n`);
    },
  };
}
