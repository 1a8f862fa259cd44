// Which socket kind the servers and the default dialer use when their options do not say:
// node:net's (false, the default) or LeanSocket. The agent passes `lean` explicitly; this switch
// lets a whole process (the package's test matrix, a bench A/B) flip every server at once.
let lean = false;

export function useLeanSockets(on: boolean): void {
  lean = on;
}

export function leanByDefault(): boolean {
  return lean;
}
