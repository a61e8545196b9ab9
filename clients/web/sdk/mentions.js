// Replies and mentions: finding @names in a text, and telling what mentions
// the user. User ids are BigInt, as the SDK decodes i64.

/** MAX_MENTIONS is the most user ids one SEND may mention (duplicates count). */
export const MAX_MENTIONS = 50;

/** MENTION_ALL is the name that mentions every member: "@all". */
export const MENTION_ALL = 'all';

// A mention is "@" at the start of the text or after a space, then a
// name; trailing punctuation ("@bob," "@bob!") is not part of the name.
const mentionRE = /(?:^|\s)@([^\s]+)/gu;
const trailingRE = /[^\p{L}\p{N}_-]+$/u;

/**
 * parseMentions finds the @name words of text and resolves them with
 * members, a Map of a group's members by name (as typed: the caller folds
 * case if it wants to): {ids, all}, the ids in order of first appearance
 * without duplicates, and whether "@all" appears. An unknown name is left
 * as plain text.
 */
export function parseMentions(text, members) {
  const ids = [];
  let all = false;
  for (const m of String(text).matchAll(mentionRE)) {
    const name = m[1].replace(trailingRE, '');
    if (!name) continue;
    if (name === MENTION_ALL) {
      all = true;
      continue;
    }
    const id = members.get(name);
    if (id !== undefined && !ids.some((x) => x === BigInt(id))) ids.push(BigInt(id));
  }
  return { ids, all };
}

/** mentionsUser reports whether message m mentions userId, by id or @all. */
export function mentionsUser(m, userId) {
  if (!m || m.senderId === BigInt(userId)) return false;
  return !!m.mentionAll || (m.mentions || []).some((id) => id === BigInt(userId));
}

/** unreadMention reports whether a ConvSummary holds a mention not read yet. */
export function unreadMention(conv) {
  return !!conv && (conv.mentionSeq || 0n) > (conv.readSeq || 0n);
}

/** storedMentions is ids as the server stores them: sorted, once each, the sender left out. */
export function storedMentions(sender, ids) {
  const out = [...new Set(ids.map((id) => BigInt(id)))].filter((id) => id !== BigInt(sender));
  return out.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}
