'use strict';
// resonance-client: a Node.js client of the Resonance frame protocol
// (docs/protocol.md), over TCP or WebSocket.

const { Client, ResonanceError, ClosedError, TimeoutError } = require('./src/client');
const { Inbox } = require('./src/inbox');
const { Op, ErrorCode, CloseReason, ContentType, GroupAction, schemas } = require('./src/schema');
const { encodeStruct, decodeStruct, BodyError } = require('./src/thrift');
const frame = require('./src/frame');

module.exports = {
  Client, Inbox, ResonanceError, ClosedError, TimeoutError, BodyError,
  Op, ErrorCode, CloseReason, ContentType, GroupAction, schemas, encodeStruct, decodeStruct, frame,
};
