/**
 * Modification times as restore sets them (fs.utimes and fs.futimes): to the exact microsecond of
 * the nanoseconds a tree records, which is as fine as Node's API goes.
 *
 * Node hands libuv the time as a double number of seconds, and libuv truncates it to the
 * microsecond. Near today's dates doubles are 238 ns apart, so the double nearest a microsecond can
 * lie just below it, and the file came back 1 µs early. For a time on a whole millisecond (any time
 * a tool that keeps milliseconds sets) that is a millisecond early, compared by milliseconds.
 * Aiming half a microsecond past it, away from zero, keeps the truncation inside the microsecond for
 * every date before 2106.
 */
export function restoreTime(mtimeNs: string): number {
  const ns = BigInt(mtimeNs);
  const us = ns >= 0n ? ns / 1000n : -((-ns + 999n) / 1000n);
  return (Number(us) + (us >= 0n ? 0.5 : -0.5)) / 1e6;
}

/**
 * The argument for fs.utimes and fs.futimes: Node sets "now" for a negative number (a date before
 * 1970), but takes a numeric string as it is.
 */
export function timeArg(seconds: number): number | string {
  return seconds < 0 ? String(seconds) : seconds;
}
