package console

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"time"
)

// Cookie names.
const (
	sessionCookie = "dg_session"
	loginCookie   = "dg_login" // pre-login CSRF nonce
)

// session is what the signed cookie carries.
type session struct {
	User    string `json:"u"`
	ID      string `json:"s"` // random; the CSRF token is derived from it
	Expires int64  `json:"e"` // Unix seconds
}

type signer struct{ key []byte }

func (s signer) mac(parts ...string) []byte {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(strings.Join(parts, "\x00")))
	return m.Sum(nil)
}

var b64 = base64.RawURLEncoding

func randomID() string {
	b := make([]byte, 18)
	_, _ = rand.Read(b)
	return b64.EncodeToString(b)
}

// encode returns the cookie value: payload "." signature.
func (s signer) encode(ss session) string {
	raw, _ := json.Marshal(ss)
	p := b64.EncodeToString(raw)
	return p + "." + b64.EncodeToString(s.mac("session", p))
}

// decode checks the signature and the expiry.
func (s signer) decode(v string, now time.Time) (session, bool) {
	p, sig, ok := strings.Cut(v, ".")
	if !ok {
		return session{}, false
	}
	got, err := b64.DecodeString(sig)
	if err != nil || !hmac.Equal(got, s.mac("session", p)) {
		return session{}, false
	}
	raw, err := b64.DecodeString(p)
	if err != nil {
		return session{}, false
	}
	var ss session
	if json.Unmarshal(raw, &ss) != nil || ss.User == "" || ss.ID == "" || now.Unix() >= ss.Expires {
		return session{}, false
	}
	return ss, true
}

// csrf is the form token of a session (or of a login nonce).
func (s signer) csrf(kind, id string) string {
	return b64.EncodeToString(s.mac("csrf", kind, id))
}

func (s signer) checkCSRF(kind, id, token string) bool {
	got, err := b64.DecodeString(token)
	return err == nil && id != "" && hmac.Equal(got, s.mac("csrf", kind, id))
}

// secureRequest reports whether the client reached us over HTTPS (directly
// or through a proxy that says so): cookies are then marked Secure.
func secureRequest(r *http.Request) bool {
	return r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}

func setCookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge time.Duration) {
	c := &http.Cookie{Name: name, Value: value, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode,
		Secure: secureRequest(r), MaxAge: int(maxAge.Seconds())}
	if maxAge < 0 {
		c.MaxAge = -1
	}
	http.SetCookie(w, c)
}
