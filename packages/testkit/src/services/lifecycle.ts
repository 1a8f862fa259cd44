// Lab services end with the lab: on SIGTERM, and when their stdin pipe closes — which happens
// when the process that created the lab dies, even by SIGKILL, so no service outlives its lab.
export function exitWithParent(close: () => void): void {
  const stop = () => {
    try {
      close();
    } finally {
      process.exit(0);
    }
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.stdin.on('end', stop);
  process.stdin.on('error', stop);
  process.stdin.resume();
}
