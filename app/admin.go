package app

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/rs/zerolog"

	logicsvc "github.com/resonance-im/resonance/logic"
)

// The operator's endpoints, served on --http-listen by a process that runs
// logic, only when --admin-token or --admin-token-file is set (otherwise
// they are 404):
//
//	GET  /admin/users/{name}                 the account's summary
//	POST /admin/users/{name}/suspend         body {"reason": "..."}
//	POST /admin/users/{name}/unsuspend
//	POST /admin/users/{name}/reset-password  answers the new password, once
//	POST /admin/users/{name}/sign-out        signs every device out
//
// {name} is a username or "#ID", a user id, which also finds a deleted
// account for show (logic.AdminUser). Answers are JSON: the summary
// (logic.UserSummary) under "user", or {"error": "..."} with 400, 401, 404
// or 500. An action's answer says under "changed" whether it changed the
// account, and when not, why under "note" (an unsuspend of an account not
// suspended). Every action is logged at info with the endpoint, the
// caller's address, the user and the outcome, changed or not: the audit
// trail. The password never is.

// maxAdminBody bounds a request body; the largest is a suspension's reason.
const maxAdminBody = 4 << 10

// adminAPI serves the /admin/ endpoints over one logic Service.
type adminAPI struct {
	svc *logicsvc.Service
	log zerolog.Logger
	// refused logs refused requests, sampled: a caller guessing the token
	// must not flood the log.
	refused zerolog.Logger
	// tokenSum is the SHA-256 of the admin token: requests are compared
	// digest to digest, in constant time and whatever their length.
	tokenSum [sha256.Size]byte
}

// adminResult is the body of a successful answer.
type adminResult struct {
	User      logicsvc.UserSummary `json:"user"`
	Password  string               `json:"password,omitempty"`
	SignedOut *int64               `json:"signed_out,omitempty"`
	// Changed says whether an action changed the account; nil for show.
	// A false one comes with Note, which says why nothing was done.
	Changed *bool  `json:"changed,omitempty"`
	Note    string `json:"note,omitempty"`
}

// changedOr sets whether r's action changed anything, and the note that
// says why not when it did not.
func (r adminResult) changedOr(changed bool, note string) adminResult {
	r.Changed = &changed
	if !changed {
		r.Note = note
	}
	return r
}

// serveAdmin registers the /admin/ endpoints when the configuration asks.
func (s *System) serveAdmin() {
	if s.cfg.adminToken == "" || s.obs == nil || s.logic == nil {
		return
	}
	log := s.log.With().Str("part", "admin").Logger()
	if s.cfg.AdminTokenFile != "" {
		if w := SharedFileWarning(s.cfg.AdminTokenFile); w != "" {
			log.Warn().Msg("--admin-token-file " + w)
		}
	}
	a := &adminAPI{svc: s.logic, log: log,
		refused:  log.Sample(&zerolog.BurstSampler{Burst: 5, Period: time.Minute}),
		tokenSum: sha256.Sum256([]byte(s.cfg.adminToken))}
	a.register(s.obs.Handle)
	s.log.Info().Msg("admin endpoints enabled on /admin/")
}

// register adds the endpoints through handle.
func (a *adminAPI) register(handle func(string, http.Handler)) {
	routes := map[string]func(*http.Request, string) (adminResult, error){
		"GET /admin/users/{name}":                 a.show,
		"POST /admin/users/{name}/suspend":        a.suspend,
		"POST /admin/users/{name}/unsuspend":      a.unsuspend,
		"POST /admin/users/{name}/reset-password": a.resetPassword,
		"POST /admin/users/{name}/sign-out":       a.signOut,
	}
	for pattern, act := range routes {
		handle(pattern, a.authorized(act))
	}
	// Anything else under /admin/ is 404 too, but only after the token:
	// a caller without it learns nothing of what exists.
	handle("/admin/", a.authorized(func(*http.Request, string) (adminResult, error) {
		return adminResult{}, errAdminNoRoute
	}))
}

// errAdminNoRoute answers a path under /admin/ that names no endpoint.
var errAdminNoRoute = errors.New("no such admin endpoint")

// authorized checks the bearer token, runs act on the named user, answers
// and writes the audit line.
func (a *adminAPI) authorized(act func(*http.Request, string) (adminResult, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !a.tokenOK(r) {
			a.refused.Warn().Str("endpoint", r.Method+" "+r.URL.Path).Str("remote", r.RemoteAddr).
				Msg("admin request refused: bad or missing token")
			w.Header().Set("WWW-Authenticate", `Bearer realm="resonance-admin"`)
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "unauthorized"})
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxAdminBody)
		name := r.PathValue("name")
		res, err := act(r, name)
		a.answer(w, r, name, res, err)
	})
}

// answer writes the outcome of the action r asked on the user name, and
// its audit line.
func (a *adminAPI) answer(w http.ResponseWriter, r *http.Request, name string,
	res adminResult, err error) {
	ev := a.log.Info().Str("endpoint", r.Method+" "+r.URL.Path).
		Str("remote", r.RemoteAddr).Str("username", name)
	if res.User.ID != 0 {
		ev = ev.Int64("user", res.User.ID)
	}
	if err != nil {
		status, msg := adminStatus(err)
		ev.Int("status", status).Err(err).Msg("admin action failed")
		writeJSON(w, status, map[string]string{"error": msg})
		return
	}
	msg := "admin action"
	if res.Changed != nil {
		ev = ev.Bool("changed", *res.Changed)
		if !*res.Changed {
			ev, msg = ev.Str("note", res.Note), "admin action changed nothing"
		}
	}
	ev.Int("status", http.StatusOK).Msg(msg)
	writeJSON(w, http.StatusOK, res)
}

// tokenOK reports whether r carries the admin token.
func (a *adminAPI) tokenOK(r *http.Request) bool {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return false
	}
	sum := sha256.Sum256([]byte(token))
	return subtle.ConstantTimeCompare(sum[:], a.tokenSum[:]) == 1
}

// adminStatus maps an action's error to its HTTP status and the text that
// is safe to answer.
func adminStatus(err error) (int, string) {
	// Logic's request errors carry text that is safe to show; anything
	// else may name the database, and stays in the log.
	switch {
	case errors.Is(err, errAdminNoRoute), errors.Is(err, logicsvc.ErrNotFound):
		return http.StatusNotFound, err.Error()
	case errors.Is(err, logicsvc.ErrBadRequest):
		return http.StatusBadRequest, err.Error()
	}
	return http.StatusInternalServerError, "internal error; see the server log"
}

func (a *adminAPI) show(r *http.Request, name string) (adminResult, error) {
	u, err := a.svc.AdminUser(r.Context(), name)
	return adminResult{User: u}, err
}

func (a *adminAPI) suspend(r *http.Request, name string) (adminResult, error) {
	var body struct {
		Reason string `json:"reason"`
	}
	if r.ContentLength != 0 {
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			return adminResult{}, fmt.Errorf("%w: body: %v", logicsvc.ErrBadRequest, err)
		}
	}
	u, changed, err := a.svc.Suspend(r.Context(), name, body.Reason)
	return adminResult{User: u}.changedOr(changed,
		"already suspended with this reason; its connections were closed again"), err
}

func (a *adminAPI) unsuspend(r *http.Request, name string) (adminResult, error) {
	u, changed, err := a.svc.Unsuspend(r.Context(), name)
	return adminResult{User: u}.changedOr(changed, "the account was not suspended"), err
}

func (a *adminAPI) resetPassword(r *http.Request, name string) (adminResult, error) {
	u, password, err := a.svc.ResetPassword(r.Context(), name)
	return adminResult{User: u, Password: password}.changedOr(true, ""), err
}

func (a *adminAPI) signOut(r *http.Request, name string) (adminResult, error) {
	u, n, err := a.svc.SignOutAll(r.Context(), name)
	return adminResult{User: u, SignedOut: &n}.changedOr(n > 0,
		"no device was signed in"), err
}

// writeJSON answers v as JSON with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store") // a reset password must not be cached
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
