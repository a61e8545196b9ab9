// logic.thrift is the Kitex service that gateways call. The gateway passes the
// authenticated identity in Session; logic never trusts an identity taken from
// a client payload.
namespace go logicrpc

include "common.thrift"
include "protocol.thrift"

// Session is one logged-in connection: who it is and where it lives.
struct Session {
    1: i64 user_id,
    2: string device_id,
    3: string gateway,      // push address of the gateway holding the connection
    4: i64 conn_id,         // unique within that gateway's lifetime
    5: string remote_addr,  // the client's address, for per-address limits and logs
    // token_gen is the device's token generation the connection was
    // authenticated at (the one its access token carries). Logic refuses a
    // session older than the device's current generation with TOKEN_INVALID:
    // the device was signed out and the close of this connection was lost.
    // 0 means unknown (a gateway older than this field) and is not checked.
    6: i64 token_gen,
}

// ConnInfo describes a connection that is not yet authenticated.
struct ConnInfo {
    1: string gateway,
    2: i64 conn_id,
    3: string remote_addr,
}

// OfflineTargetsReq asks which devices of a message's recipients should get
// an offline notification. Only task calls it (OfflineTargets).
struct OfflineTargetsReq {
    1: string conv_id,
    2: i64 sender_id,
    3: list<i64> recipients,        // user ids; the sender is left out of the answer
    4: list<DeviceRef> online,      // devices with a live route: left out of the answer
    5: i64 at_ms,                   // the message's send time, for do-not-disturb
    6: list<i64> mentioned,         // recipients the message mentions (all of them for @all)
}

// DeviceRef names one device of a user.
struct DeviceRef {
    1: i64 user_id,
    2: string device_id,
}

// OfflineTarget is one device with a push token that is not online.
struct OfflineTarget {
    1: i64 user_id,
    2: string device_id,
    3: protocol.PushPlatform platform,
    4: string token,
    5: string app_id,
    6: i32 badge,                   // the user's unread messages over all conversations
    7: bool muted,                  // the user muted the conversation
    8: bool dnd,                    // at_ms falls in the user's do-not-disturb window
    9: bool mentioned,              // the message mentions the user: notify even when muted
}

// MaxSendBatch bounds the requests of one SendBatch or SendRuns call. A
// gateway coalesces at most this many SENDs into one call, and logic refuses
// a larger call: it is what one group commit takes at once, so that a batch
// holds its conversations' locks briefly.
const i32 MaxSendBatch = 64

// SendOutcome is the outcome of one request of a SendBatch: resp when Send
// would have returned it, err when Send would have thrown it; never both.
// (Not SendResult: thriftgo renames a struct whose name ends in Result.)
struct SendOutcome {
    1: optional protocol.SendResp resp,
    2: optional common.BizError err,
}

// MaxDisconnectBatch bounds the sessions of one DisconnectBatch call.
const i32 MaxDisconnectBatch = 256

// MaxLoginBatch bounds the attempts of one LoginBatch call.
const i32 MaxLoginBatch = 64

// LoginAttempt is one connection's LOGIN in a LoginBatch call.
struct LoginAttempt {
    1: protocol.LoginReq req,
    2: ConnInfo conn,
}

// LoginOutcome is the outcome of one LoginAttempt: resp when Login would
// have returned it, err when Login would have thrown it; never both.
struct LoginOutcome {
    1: optional protocol.LoginResp resp,
    2: optional common.BizError err,
}

// SendRun is one connection's run of SENDs in a SendRuns call.
struct SendRun {
    1: Session session,
    2: list<protocol.SendReq> reqs,
}

struct OfflineTargetsResp {
    1: list<OfflineTarget> targets,
    2: string sender_name,          // the sender's nickname, or username without one; empty without targets
}

service Logic {
    // Register creates an account; conn says where the request came from, for
    // per-address limits.
    protocol.RegisterResp Register(1: protocol.RegisterReq req, 2: ConnInfo conn) throws (1: common.BizError err)

    // Login checks the credentials or token, records the route of the
    // connection and returns a fresh token, with limits filled from logic's
    // configuration (the gateway passes them to the client as they are).
    protocol.LoginResp Login(1: protocol.LoginReq req, 2: ConnInfo conn) throws (1: common.BizError err)

    // LoginBatch is Login for the token LOGINs of several connections, which
    // a gateway gathered while its earlier calls to logic were out. Each
    // attempt is handled as Login handles it, concurrently with the others,
    // except that of several attempts whose tokens name one device the last
    // runs after the rest, so that the device's route ends on it; outcome i
    // is what Login would have returned or thrown for attempts[i].
    // The call throws only when it is refused whole: no attempts or more than
    // MaxLoginBatch (BAD_REQUEST). A logic older than this method refuses it:
    // upgrade logic before gateways.
    list<LoginOutcome> LoginBatch(1: list<LoginAttempt> attempts) throws (1: common.BizError err)

    // Disconnect removes the route of a closed connection, only if the route
    // still points at that connection.
    void Disconnect(1: Session session) throws (1: common.BizError err)

    // DisconnectBatch is Disconnect for the closed connections a gateway
    // found queued together (a mass disconnect). Each session is handled as
    // Disconnect handles it; the route of one that fails is left to expire,
    // as Disconnect's would be, and the call answers how many failed. It
    // throws only when it is refused whole: no sessions or more than
    // MaxDisconnectBatch (BAD_REQUEST). A logic older than this method refuses
    // it: upgrade logic before gateways.
    i32 DisconnectBatch(1: list<Session> sessions) throws (1: common.BizError err)

    // Renew extends the routes of live connections; gateways call it in batches.
    void Renew(1: list<Session> sessions) throws (1: common.BizError err)

    protocol.SendResp Send(1: Session session, 2: protocol.SendReq req) throws (1: common.BizError err)
    // SendBatch is Send for a run of SENDs of one connection, which the
    // gateway found queued together. Every request is from the one session;
    // they are stored in the order given (within a conversation, seq grows
    // with the index), and their writes join one group commit. Result i is
    // what Send would have returned or thrown for reqs[i]. The call throws
    // only when it is refused whole: no session, or 0 or more than
    // MaxSendBatch requests (BAD_REQUEST). A logic older than this method
    // refuses it: upgrade logic before gateways.
    list<SendOutcome> SendBatch(1: Session session, 2: list<protocol.SendReq> reqs) throws (1: common.BizError err)

    // SendRuns is SendBatch for the runs of SENDs of several connections,
    // which a gateway gathered while its earlier calls to logic were out.
    // Each run is stored as SendBatch stores it, in the order given, and the
    // writes of all runs join one group commit. Result i holds run i's
    // outcomes, as SendBatch would return them. The call throws only when it
    // is refused whole: a run without a session (UNAUTHENTICATED), no runs,
    // an empty run, or more than MaxSendBatch requests in all (BAD_REQUEST).
    // A logic older than this method refuses it: upgrade logic before
    // gateways.
    list<list<SendOutcome>> SendRuns(1: list<SendRun> runs) throws (1: common.BizError err)
    protocol.SyncResp Sync(1: Session session, 2: protocol.SyncReq req) throws (1: common.BizError err)
    protocol.GetUserResp GetUser(1: Session session, 2: protocol.GetUserReq req) throws (1: common.BizError err)

    // Delivered records this device's delivered positions.
    protocol.DeliveredResp Delivered(1: Session session, 2: protocol.DeliveredReq req) throws (1: common.BizError err)
    protocol.SyncConvsResp SyncConvs(1: Session session, 2: protocol.SyncConvsReq req) throws (1: common.BizError err)
    protocol.MarkReadResp MarkRead(1: Session session, 2: protocol.MarkReadReq req) throws (1: common.BizError err)

    protocol.LogoutResp Logout(1: Session session, 2: protocol.LogoutReq req) throws (1: common.BizError err)
    protocol.RefreshResp Refresh(1: Session session, 2: protocol.RefreshReq req) throws (1: common.BizError err)
    protocol.ChangePasswordResp ChangePassword(1: Session session, 2: protocol.ChangePasswordReq req) throws (1: common.BizError err)
    protocol.UserInfo UpdateProfile(1: Session session, 2: protocol.UpdateProfileReq req) throws (1: common.BizError err)
    protocol.ListDevicesResp ListDevices(1: Session session, 2: protocol.ListDevicesReq req) throws (1: common.BizError err)
    protocol.SignOutDeviceResp SignOutDevice(1: Session session, 2: protocol.SignOutDeviceReq req) throws (1: common.BizError err)
    protocol.SearchUsersResp SearchUsers(1: Session session, 2: protocol.SearchUsersReq req) throws (1: common.BizError err)
    protocol.BlockResp Block(1: Session session, 2: protocol.BlockReq req) throws (1: common.BizError err)

    protocol.GroupChangeResp CreateGroup(1: Session session, 2: protocol.CreateGroupReq req) throws (1: common.BizError err)
    protocol.GroupChangeResp ManageGroup(1: Session session, 2: protocol.ManageGroupReq req) throws (1: common.BizError err)
    protocol.GroupInfo GetGroup(1: Session session, 2: protocol.GetGroupReq req) throws (1: common.BizError err)
    protocol.SendResp Recall(1: Session session, 2: protocol.RecallReq req) throws (1: common.BizError err)
    protocol.SendResp Edit(1: Session session, 2: protocol.EditReq req) throws (1: common.BizError err)
    protocol.SendResp React(1: Session session, 2: protocol.ReactReq req) throws (1: common.BizError err)
    protocol.SendResp Pin(1: Session session, 2: protocol.PinReq req) throws (1: common.BizError err)
    protocol.UploadResp Upload(1: Session session, 2: protocol.UploadReq req) throws (1: common.BizError err)
    protocol.DownloadResp Download(1: Session session, 2: protocol.DownloadReq req) throws (1: common.BizError err)
    protocol.TypingResp Typing(1: Session session, 2: protocol.TypingReq req) throws (1: common.BizError err)
    protocol.ReadCountsResp ReadCounts(1: Session session, 2: protocol.ReadCountsReq req) throws (1: common.BizError err)
    protocol.GetPresenceResp GetPresence(1: Session session, 2: protocol.GetPresenceReq req) throws (1: common.BizError err)
    protocol.GetPresenceResp WatchPresence(1: Session session, 2: protocol.WatchPresenceReq req) throws (1: common.BizError err)
    protocol.SetPushTokenResp SetPushToken(1: Session session, 2: protocol.SetPushTokenReq req) throws (1: common.BizError err)
    protocol.MuteConvResp MuteConv(1: Session session, 2: protocol.MuteConvReq req) throws (1: common.BizError err)
    protocol.ClearConvResp ClearConv(1: Session session, 2: protocol.ClearConvReq req) throws (1: common.BizError err)
    protocol.UserSettings SetDND(1: Session session, 2: protocol.SetDNDReq req) throws (1: common.BizError err)
    protocol.UserSettings GetSettings(1: Session session, 2: protocol.GetSettingsReq req) throws (1: common.BizError err)
    protocol.SearchMessagesResp SearchMessages(1: Session session, 2: protocol.SearchMessagesReq req) throws (1: common.BizError err)

    // DeleteAccount deletes the session's account (see DeleteAccountReq);
    // the gateway closes the session's connection after the reply.
    protocol.DeleteAccountResp DeleteAccount(1: Session session, 2: protocol.DeleteAccountReq req) throws (1: common.BizError err)

    // OfflineTargets is internal: task calls it for each message event to
    // learn the push tokens, badges, mute and do-not-disturb state of the
    // recipients' offline devices. The internal secret guards it like every
    // other call on logic's port.
    OfflineTargetsResp OfflineTargets(1: OfflineTargetsReq req) throws (1: common.BizError err)
}
