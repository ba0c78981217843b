package console

import (
	"bytes"
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// pageNames are the templates under templates/, each rendered inside
// layout.html.
var pageNames = []string{"login", "overview", "holds", "search", "audit", "breaker", "dlq", "error"}

var funcs = template.FuncMap{
	"show": show,
	"ts":   timestamp,
	"age":  age,
	"join": strings.Join,
	"pct":  func(f float64) string { return fmt.Sprintf("%.1f%%", f) },
}

func parsePages() (map[string]*template.Template, error) {
	out := map[string]*template.Template{}
	for _, name := range pageNames {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("console template %s: %w", name, err)
		}
		out[name] = t
	}
	return out, nil
}

// page is what every template gets.
type page struct {
	Title  string
	Nav    string // the active menu entry
	Viewer *viewer
	Flash  string
	Error  string
	Data   any
}

// render writes a page; a template failure is a 500 with a plain message.
func (c *Console) render(w http.ResponseWriter, r *http.Request, code int, name string, p page) {
	if p.Viewer == nil {
		if v := current(r); v.User.Name != "" {
			p.Viewer = &v
		}
	}
	if p.Flash == "" {
		p.Flash = flashes[r.URL.Query().Get("done")]
	}
	var buf bytes.Buffer
	if err := c.pages[name].Execute(&buf, p); err != nil {
		c.log.Error("console: render", "page", name, "error", err)
		http.Error(w, "internal error rendering the page", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	_, _ = w.Write(buf.Bytes())
}

// fail renders the error page.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, v *viewer, code int, msg string) {
	c.render(w, r, code, "error", page{Title: http.StatusText(code), Viewer: v, Error: msg})
}

// flashes are the fixed messages a redirect after a change may ask for
// (?done=...); nothing from the request is echoed.
var flashes = map[string]string{
	"approved": "Hold approved: its addresses are unverified and the decision is in the audit log.",
	"rejected": "Hold rejected: its addresses stay verified; the decision is in the audit log.",
	"resumed":  "Enforcement resumed; paused changes were applied.",
	"replayed": "Dead letters replayed to their original subjects.",
	"checking": "Check enqueued: the checker looks the domain up and the enforcer applies the result.",
	"pending":  "A check of this domain was already queued.",
}

// maxShown is how many characters of an outside value a page shows.
const maxShown = 200

// show makes an outside value (an address, a domain, evidence from a
// registry) safe to look at, before html/template escapes it: control,
// format and bidirectional-override characters become visible ⟨U+XXXX⟩
// code points (so RTL overrides cannot reorder what an operator reads), and
// a value longer than n characters (maxShown when n is omitted) is cut with
// its length noted.
func show(s string, n ...int) string {
	limit := maxShown
	if len(n) > 0 && n[0] > 0 {
		limit = n[0]
	}
	var b strings.Builder
	count := 0
	for i, r := range s {
		if count == limit {
			fmt.Fprintf(&b, "… (%d characters)", utf8.RuneCountInString(s))
			break
		}
		count++
		switch {
		case r == utf8.RuneError && !strings.HasPrefix(s[i:], "\uFFFD"):
			b.WriteString("⟨invalid byte⟩")
		case unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || unicode.Is(unicode.Bidi_Control, r):
			fmt.Fprintf(&b, "⟨U+%04X⟩", r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// timestamp formats a time (or *time.Time; nil and zero give "–") in UTC.
func timestamp(v any) string {
	var t time.Time
	switch x := v.(type) {
	case time.Time:
		t = x
	case *time.Time:
		if x != nil {
			t = *x
		}
	}
	if t.IsZero() {
		return "–"
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}

// age says how long ago t was, roughly.
func age(d time.Duration) string {
	switch {
	case d < 0:
		return "–"
	case d < time.Minute:
		return "under a minute"
	case d < time.Hour:
		return fmt.Sprintf("%d min", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h", int(d.Hours()))
	default:
		return fmt.Sprintf("%d days", int(d.Hours()/24))
	}
}
