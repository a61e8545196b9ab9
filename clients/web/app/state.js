// The web app's shared state: the element lookup, the page's query
// parameters, everything this tab knows (app) and the renderer of files,
// which the app's modules (app.js, sending.js, render.js, wiring.js) read
// and change.

import { State } from '../sdk/index.js';
import { FileView } from './fileview.js';

export const $ = (id) => document.getElementById(id);
export const params = new URLSearchParams(location.search);

// Everything this tab knows. Conversation ids and user ids (BigInt) are
// keyed as strings.
export const app = {
  wsUrl: '',
  session: null,
  me: null, // {userId, username}
  ending: false, // the user signs out or deletes the account: the session's end is no news
  convs: new Map(), // conv id -> conv (see ensureConv)
  users: new Map(), // user id string -> username
  presence: new Map(), // user id string -> boolean, while connected
  connState: State.CONNECTING, // the session's last State (setConn)
  presenceSupported: true,
  watching: new Set(), // user id strings of the last watch set the server took
  openId: '',
  typingSentMs: 0,
  storage: null,
  replyTo: null, // {convId, seq} the composer replies to, or null
  editing: null, // {convId, seq, draft} of the user's message the composer edits, or null
  // stickToBottom: the next render scrolls the messages to the bottom.
  stickToBottom: true,
  uploads: [], // files on their way: {id, name, size, sent, convId, error, ctl} (attachFiles)
  clockSkewMs: 0, // the server's clock less this one's, as of the login
};

// files renders FILE messages: thumbnails, cards, the full-size viewer.
export const files = new FileView({ session: () => app.session, root: $('scroller') });
