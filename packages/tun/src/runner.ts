// The seam between this package and the `ip` binary: every command goes through a CommandRunner,
// so unit tests inject RecordingRunner and compare the rendered commands to expected text.
import { execFile } from 'node:child_process';
import { fail } from './errors.js';

export interface CommandRunner {
  run(cmd: string, args: readonly string[]): Promise<unknown> | unknown;
}

/** Runs commands for real (no shell), failing with PP_ERR_TUN_COMMAND_FAILED and the stderr. */
export const execRunner: CommandRunner = {
  run(cmd, args) {
    return new Promise<string>((resolve, reject) => {
      execFile(cmd, [...args], { timeout: 10_000 }, (err, stdout, stderr) => {
        if (err)
          reject(
            fail(
              'PP_ERR_TUN_COMMAND_FAILED',
              { command: [cmd, ...args].join(' '), reason: (stderr || err.message).trim() },
              { cause: err },
            ),
          );
        else resolve(stdout);
      });
    });
  },
};

/** Records commands as "cmd arg arg" lines and does nothing. */
export class RecordingRunner implements CommandRunner {
  readonly commands: string[] = [];
  run(cmd: string, args: readonly string[]): void {
    this.commands.push([cmd, ...args].join(' '));
  }
}
