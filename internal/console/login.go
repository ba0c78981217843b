package console

import (
	"net/http"
	"strings"
	"time"
)

type loginData struct {
	CSRF string
	Name string
}

// loginPage sets a fresh pre-login nonce and shows the form.
func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	if c.cfg.InsecureLocal {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	nonce := randomID()
	setCookie(w, r, loginCookie, nonce, 10*time.Minute)
	c.render(w, r, http.StatusOK, "login", page{Title: "Sign in", Data: loginData{CSRF: c.sign.csrf("login", nonce)}})
}

func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	if c.cfg.InsecureLocal {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	name := strings.TrimSpace(r.PostFormValue("name"))
	again := func(code int, msg string) {
		nonce := randomID()
		setCookie(w, r, loginCookie, nonce, 10*time.Minute)
		c.render(w, r, code, "login", page{Title: "Sign in", Error: msg, Data: loginData{CSRF: c.sign.csrf("login", nonce), Name: show(name, 64)}})
	}
	nonce, err := r.Cookie(loginCookie)
	if err != nil || !c.sign.checkCSRF("login", nonce.Value, r.PostFormValue("csrf")) {
		again(http.StatusForbidden, "The sign-in form expired; please try again.")
		return
	}
	if !c.limiter.allow(c.cfg.Clock.Now(), "addr:"+clientAddr(r), "user:"+name) {
		c.log.Warn("console: login rate limited", "remote", clientAddr(r), "user", show(name, 64))
		w.Header().Set("Retry-After", "60")
		again(http.StatusTooManyRequests, "Too many sign-in attempts; wait a minute and try again.")
		return
	}
	u, ok := authenticate(c.cfg.Users, name, r.PostFormValue("password"))
	if !ok {
		c.log.Warn("console: failed login", "remote", clientAddr(r), "user", show(name, 64))
		again(http.StatusUnauthorized, "Unknown user or wrong password.")
		return
	}
	ss := session{User: u.Name, ID: randomID(), Expires: c.cfg.Clock.Now().Add(c.cfg.SessionTTL).Unix()}
	setCookie(w, r, sessionCookie, c.sign.encode(ss), c.cfg.SessionTTL)
	setCookie(w, r, loginCookie, "", -1)
	c.log.Info("console: login", "user", u.Name, "role", u.Role, "remote", clientAddr(r))
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request) {
	setCookie(w, r, sessionCookie, "", -1)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}
