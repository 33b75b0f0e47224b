package server

import (
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // TURN REST API credentials are HMAC-SHA1 by definition.
	"encoding/base64"
	"log/slog"
	"strconv"
	"strings"

	"github.com/pion/turn/v5"

	"github.com/stunfault/stunfault/config"
	"github.com/stunfault/stunfault/faults"
)

// authenticator answers pion's AuthHandler from the [[users]] long-term
// credentials and, when [auth].secret is set, from TURN REST API credentials
// (coturn's use-auth-secret): username "EXPIRY" or "EXPIRY:NAME" with EXPIRY
// in Unix seconds, password base64(HMAC-SHA1(secret, username)).
type authenticator struct {
	realm  string
	keys   map[string][]byte // user name -> MD5(name:realm:password)
	secret string
	clock  faults.Clock
	log    *slog.Logger
}

func newAuthenticator(cfg config.Config, clock faults.Clock, log *slog.Logger) *authenticator {
	a := &authenticator{
		realm:  cfg.Server.Realm,
		keys:   make(map[string][]byte, len(cfg.Users)),
		secret: cfg.Auth.Secret,
		clock:  clock,
		log:    log,
	}
	for _, u := range cfg.Users {
		a.keys[u.Name] = turn.GenerateAuthKey(u.Name, a.realm, u.Password)
	}
	return a
}

// handle is a turn.AuthHandler. Returning false makes pion answer 401 with a
// fresh NONCE, as it does for a wrong password.
func (a *authenticator) handle(ra *turn.RequestAttributes) (string, []byte, bool) {
	if key, ok := a.keys[ra.Username]; ok {
		return ra.Username, key, true
	}
	if a.secret == "" {
		a.log.Debug("unknown user", "username", ra.Username, "client", ra.SrcAddr)
		return "", nil, false
	}
	expiry, name, _ := strings.Cut(ra.Username, ":")
	exp, err := strconv.ParseInt(expiry, 10, 64)
	if err != nil {
		a.log.Debug("unknown user, and not a REST API username (EXPIRY:NAME)", "username", ra.Username, "client", ra.SrcAddr)
		return "", nil, false
	}
	if now := a.clock.Now().Unix(); exp < now {
		a.log.Debug("expired REST API credential", "username", ra.Username, "expired_seconds_ago", now-exp, "client", ra.SrcAddr)
		return "", nil, false
	}
	if name == "" {
		name = ra.Username
	}
	password := RESTPassword(a.secret, ra.Username)
	return name, turn.GenerateAuthKey(ra.Username, a.realm, password), true
}

// RESTPassword returns the TURN REST API password for username under secret:
// base64(HMAC-SHA1(secret, username)), as coturn's use-auth-secret expects.
func RESTPassword(secret, username string) string {
	mac := hmac.New(sha1.New, []byte(secret))
	mac.Write([]byte(username))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// keyFor returns the long-term key for username (a [[users]] name, or a REST
// API username when [auth].secret is set, expired or not), to sign an
// injected error response; nil when unknown.
func (a *authenticator) keyFor(username string) []byte {
	if key, ok := a.keys[username]; ok {
		return key
	}
	if a.secret == "" {
		return nil
	}
	if _, err := strconv.ParseInt(strings.SplitN(username, ":", 2)[0], 10, 64); err != nil {
		return nil
	}
	return turn.GenerateAuthKey(username, a.realm, RESTPassword(a.secret, username))
}
