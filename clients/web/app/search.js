// Message search in the web app, without DOM so that Node tests load it as
// the browser does: a search's paging (MessageSearch) and how a match is
// cut and marked in its text. searchview.js shows it.

/**
 * SEARCH_PAGES bounds the pages one search or More asks for while they come
 * back without a match: the server reads a bounded part of the history per
 * page, so a rare word can take several, and the user decides to go on.
 */
export const SEARCH_PAGES = 5;

/** MAX_QUERY_CHARS is the longest query the server takes, in characters. */
export const MAX_QUERY_CHARS = 64;

// SNIPPET_CHARS is how much of a long text a result shows, and
// SNIPPET_BEFORE how much of it comes before the match.
const SNIPPET_CHARS = 120;
const SNIPPET_BEFORE = 40;

/**
 * queryProblem says why the server would refuse query (BAD_REQUEST), or ''
 * when it takes it: 1 to 64 characters once trimmed.
 */
export function queryProblem(query) {
  const q = query.trim();
  if (q === '') return 'Type something to search for.';
  if ([...q].length > MAX_QUERY_CHARS) {
    return `A search is at most ${MAX_QUERY_CHARS} characters.`;
  }
  return '';
}

/**
 * MessageSearch is one search of the user's messages: results holds the
 * matches found so far, newest first, and more asks for older ones. done
 * is true once the server reached the oldest message the user may read.
 */
export class MessageSearch {
  constructor(query, { convId = '', limit = 20 } = {}) {
    this.query = query.trim();
    this.convId = convId;
    this.limit = limit;
    this.results = [];
    this.cursor = 0n; // where the next page starts; 0n before the first
    this.asked = false;
    this.done = false;
    this.busy = false;
  }

  /**
   * more asks session for pages until one holds matches, the search is done
   * or SEARCH_PAGES were asked, appends the matches to results and returns
   * how many it found. A refusal rejects, keeping what was found before it
   * and the cursor of the last page answered, so More can try again. A call
   * while one is under way, or after the end, finds nothing.
   */
  async more(session) {
    if (this.done || this.busy) return 0;
    this.busy = true;
    let found = 0;
    try {
      for (let i = 0; i < SEARCH_PAGES && found === 0 && !this.done; i++) {
        const page = await session.searchMessages({ query: this.query, convId: this.convId,
          cursor: this.cursor, limit: this.limit });
        this.asked = true;
        this.cursor = page.nextCursor;
        this.done = page.nextCursor === 0n;
        this.results.push(...page.messages);
        found += page.messages.length;
      }
    } finally {
      this.busy = false;
    }
    return found;
  }
}

// findMatch returns where query first occurs in text from index from,
// ignoring case, or -1. It compares piece by piece rather than search a
// lowered copy, whose indexes may differ from text's (a letter whose
// lower case is longer).
function findMatch(text, query, from = 0) {
  const q = query.toLowerCase();
  if (q === '') return -1;
  for (let i = from; i + query.length <= text.length; i++) {
    if (text.slice(i, i + query.length).toLowerCase() === q) return i;
  }
  return -1;
}

/**
 * matchParts cuts text into parts {text, match}, match true for each
 * occurrence of query ignoring case, for the view to mark them.
 */
export function matchParts(text, query) {
  const parts = [];
  let at = 0;
  for (let i = findMatch(text, query); i >= 0; i = findMatch(text, query, at)) {
    if (i > at) parts.push({ text: text.slice(at, i), match: false });
    parts.push({ text: text.slice(i, i + query.length), match: true });
    at = i + query.length;
  }
  if (at < text.length) parts.push({ text: text.slice(at), match: false });
  return parts;
}

/**
 * snippet is text on one line, cut around its first match of query when
 * longer than a result shows, an ellipsis where it was cut.
 */
export function snippet(text, query) {
  const flat = text.replace(/\s+/g, ' ').trim();
  if (flat.length <= SNIPPET_CHARS) return flat;
  const i = Math.max(findMatch(flat, query.trim()), 0);
  const start = Math.max(0, Math.min(i - SNIPPET_BEFORE, flat.length - SNIPPET_CHARS));
  const end = Math.min(flat.length, start + SNIPPET_CHARS);
  return `${start > 0 ? '…' : ''}${flat.slice(start, end)}${end < flat.length ? '…' : ''}`;
}
