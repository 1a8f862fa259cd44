// A recording CommandRunner for tests: keeps every call and answers from a responder.
import type { CommandResult, CommandRunner } from './runner.js';

export interface RecordedCall {
  readonly cmd: string;
  readonly args: readonly string[];
  readonly stdin: string | undefined;
}

export type Responder = (call: RecordedCall) => CommandResult | Promise<CommandResult>;

export interface FakeRunner extends CommandRunner {
  readonly calls: RecordedCall[];
  /** Replace how the fake answers (throw from it to simulate a failing command). */
  respond(responder: Responder): void;
  /** The stdin scripts given to `nft -f -`, in order. */
  scripts(): string[];
}

export function createFakeRunner(responder: Responder = () => ({ stdout: '', stderr: '' })): FakeRunner {
  let answer = responder;
  const calls: RecordedCall[] = [];
  return {
    calls,
    respond(r) {
      answer = r;
    },
    scripts() {
      return calls.filter((c) => c.cmd === 'nft' && c.args.includes('-f')).map((c) => c.stdin ?? '');
    },
    async run(cmd, args, stdin) {
      const call = { cmd, args: [...args], stdin };
      calls.push(call);
      return answer(call);
    },
  };
}
