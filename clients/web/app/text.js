// How the web app shows text that others wrote (message bodies, previews,
// user and group names), without DOM, so that Node tests load it as the
// browser does. A peer must not be able to hide text, reorder the text
// around theirs with a bidi override ("a\u202Eevil" reading "alive"), or
// ring a bell: user text is cleaned (safeText) and shown isolated (a <bdi>
// or an element with dir="auto", which app.css isolates), as the terminal
// client cleans what it prints (client/chat/clean.go).

const REPLACEMENT = '\uFFFD';

/**
 * safeText returns s fit to show. C0 controls and DEL become their visible
 * Control Pictures (␀ … ␟, ␡), except a line feed and a tab in multiline
 * text (a message body); bidi embeddings, overrides and isolates, the line
 * and paragraph separators, C1 controls and invisible format characters
 * become U+FFFD. Zero-width (non-)joiners and tag characters stay: emoji
 * sequences and subdivision flags are spelled with them; bidi marks stay
 * too, since right-to-left writing needs them and isolation keeps them
 * inside the text.
 */
export function safeText(s, { multiline = false } = {}) {
  const text = String(s);
  if (isSafe(text, multiline)) return text;
  let out = '';
  for (const ch of text) out += safeChar(ch, multiline);
  return out;
}

// SAFE_RE matches a string of nothing safeText replaces; most are.
const SAFE_RE = /^[^\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069\u2028\u2029\p{Cf}]*$/u;

function isSafe(text, multiline) {
  if (SAFE_RE.test(text)) return true;
  return multiline && SAFE_RE.test(text.replace(/[\n\t]/g, ''));
}

function safeChar(ch, multiline) {
  const c = ch.codePointAt(0);
  if (c < 0x20) {
    if (multiline && (ch === '\n' || ch === '\t')) return ch;
    return String.fromCodePoint(0x2400 + c);
  }
  if (c === 0x7f) return '\u2421';
  if (c >= 0x80 && c <= 0x9f) return REPLACEMENT;
  if ((c >= 0x202a && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069)) return REPLACEMENT;
  if (c === 0x2028 || c === 0x2029) return REPLACEMENT;
  if (keptFormat(c)) return ch;
  return /\p{Cf}/u.test(ch) ? REPLACEMENT : ch;
}

// keptFormat reports the format characters safeText keeps: joiners, bidi
// marks, tags and the prepended concatenation marks, which are visible.
function keptFormat(c) {
  return c === 0x200c || c === 0x200d || c === 0x200e || c === 0x200f || c === 0x061c ||
    (c >= 0xe0020 && c <= 0xe007f) || (c >= 0x0600 && c <= 0x0605) || c === 0x06dd ||
    c === 0x070f || c === 0x0890 || c === 0x0891 || c === 0x08e2 || c === 0x110bd ||
    c === 0x110cd;
}

/**
 * Line is a line of the app's own words with user text in it: segments
 * are strings (the app's) and {user} objects (someone's text, shown
 * cleaned and isolated). String(line) is its plain text, user text
 * cleaned, for labels and tests.
 */
export class Line {
  constructor(segments) {
    this.segments = segments;
  }

  toString() {
    return this.segments.map((s) => (typeof s === 'string' ? s : safeText(s.user))).join('');
  }
}

/**
 * line is a template tag: line`${who} left` makes a Line whose
 * interpolated values are user text, except numbers and BigInts (the
 * app's) and Lines, whose segments it takes over as they are.
 */
export function line(strings, ...values) {
  const segments = [];
  strings.forEach((s, i) => {
    if (s) segments.push(s);
    if (i >= values.length) return;
    const v = values[i];
    if (v instanceof Line) segments.push(...v.segments);
    else if (typeof v === 'number' || typeof v === 'bigint') segments.push(String(v));
    else segments.push({ user: String(v) });
  });
  return new Line(segments);
}

/** joinLines joins Lines and user strings with sep, the app's. */
export function joinLines(items, sep) {
  const segments = [];
  items.forEach((it, i) => {
    if (i > 0) segments.push(sep);
    if (it instanceof Line) segments.push(...it.segments);
    else segments.push({ user: String(it) });
  });
  return new Line(segments);
}

const utf8 = new TextEncoder();

/**
 * utf8Length is how many bytes s takes in UTF-8, as the server counts
 * content (a lone surrogate is sent as U+FFFD, 3 bytes).
 */
export function utf8Length(s) {
  return utf8.encode(s).length;
}
