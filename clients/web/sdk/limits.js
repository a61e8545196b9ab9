// The server's limits (docs/protocol.md, Login and Limits), as its
// LoginResp reports them: what the app offers follows them, so that it
// neither offers what the server refuses nor refuses what it allows. A
// server older than LoginResp.limits reports none; the defaults stand in.

/**
 * DEFAULT_LIMITS are the server's defaults, assumed for a limit the server
 * does not report: sizes in bytes, windows in ms.
 */
export const DEFAULT_LIMITS = Object.freeze({
  maxContentBytes: 16 * 1024,
  maxFileBytes: 25 * 1024 * 1024,
  recallWindowMs: 2 * 60_000,
  editWindowMs: 24 * 3_600_000,
  maxGroupMembers: 500,
  maxPins: 20, // pinned messages of one conversation
  reported: false, // the server sent its limits
});

/**
 * limitsOf returns the limits of a LoginResp as plain numbers: each one
 * the server left unset (or at 0 or less) is its default; reported says
 * whether the server sent any.
 */
export function limitsOf(login) {
  const sl = login?.limits;
  if (!sl) return DEFAULT_LIMITS;
  const pick = (v, dflt) => (v !== undefined && Number(v) > 0 ? Number(v) : dflt);
  return Object.freeze({
    maxContentBytes: pick(sl.maxContentBytes, DEFAULT_LIMITS.maxContentBytes),
    maxFileBytes: pick(sl.maxFileBytes, DEFAULT_LIMITS.maxFileBytes),
    recallWindowMs: pick(sl.recallWindowMs, DEFAULT_LIMITS.recallWindowMs),
    editWindowMs: pick(sl.editWindowMs, DEFAULT_LIMITS.editWindowMs),
    maxGroupMembers: pick(sl.maxGroupMembers, DEFAULT_LIMITS.maxGroupMembers),
    maxPins: pick(sl.maxPins, DEFAULT_LIMITS.maxPins),
    reported: true,
  });
}

/**
 * windowOpen reports whether a window of windowMs after message m's send
 * time (the server's clock) is still open at nowMs, on the same clock; its
 * last millisecond is still in it, as the server judges.
 */
export function windowOpen(m, windowMs, nowMs) {
  return nowMs <= Number(m.sendTimeMs) + windowMs;
}
