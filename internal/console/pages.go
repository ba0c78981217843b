package console

import (
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/domainguard/domainguard/enforcer"
	"github.com/domainguard/domainguard/internal/deadletters"
	"github.com/domainguard/domainguard/lifecycle"
	"github.com/domainguard/domainguard/producer"
	"github.com/domainguard/domainguard/schemas"
)

// decision reads the note of a change form: required, and short.
func (c *Console) decision(r *http.Request) (enforcer.Decision, error) {
	note := strings.TrimSpace(r.PostFormValue("note"))
	if note == "" {
		return enforcer.Decision{}, errors.New("a note is required: say why, for the audit log")
	}
	if len(note) > schemas.MaxNoteBytes {
		return enforcer.Decision{}, errors.New("the note is too long")
	}
	return enforcer.Decision{By: current(r).User.Name, Note: note, Via: "console"}, nil
}

type overviewData struct {
	Overview
	Breaker     enforcer.BreakerStatus
	DLQDepth    uint64
	DLQError    string
	OldestAge   string
	BudgetShare string
}

func (c *Console) overview(w http.ResponseWriter, r *http.Request) {
	now := c.cfg.Clock.Now()
	o, err := c.overviewData(r.Context(), now)
	if err != nil {
		c.log.Error("console: overview", "error", err)
		c.fail(w, r, nil, http.StatusInternalServerError, "The overview could not be read from the database.")
		return
	}
	d := overviewData{Overview: o}
	if d.Breaker, err = c.cfg.Store.BreakerStatus(r.Context()); err != nil {
		c.log.Error("console: breaker", "error", err)
	}
	if o.OldestHold != nil {
		d.OldestAge = age(now.Sub(*o.OldestHold))
	}
	if o.Budget > 0 {
		d.BudgetShare = strconv.Itoa(100*o.LookupsToday/o.Budget) + "%"
	}
	if c.cfg.JS == nil {
		d.DLQError = "not connected to NATS"
	} else if s, err := deadletters.Stream(r.Context(), c.cfg.JS, c.cfg.Topology.Namespace); err != nil {
		d.DLQError = "DLQ stream unavailable"
	} else if d.DLQDepth, err = deadletters.Depth(r.Context(), s); err != nil {
		d.DLQError = "DLQ stream unavailable"
	}
	c.render(w, r, http.StatusOK, "overview", page{Title: "Overview", Nav: "overview", Data: d})
}

type holdsData struct {
	Pending, Decided []enforcer.Hold
}

func (c *Console) holds(w http.ResponseWriter, r *http.Request) {
	c.holdsPage(w, r, http.StatusOK, "")
}

func (c *Console) holdsPage(w http.ResponseWriter, r *http.Request, code int, errMsg string) {
	all, err := c.cfg.Store.ListHolds(r.Context(), "")
	if err != nil {
		c.log.Error("console: holds", "error", err)
		c.fail(w, r, nil, http.StatusInternalServerError, "The holds could not be read.")
		return
	}
	var d holdsData
	for _, h := range all {
		if h.Status == enforcer.HoldPending {
			d.Pending = append(d.Pending, h)
		} else {
			d.Decided = append(d.Decided, h)
		}
	}
	slices.Reverse(d.Decided)
	d.Decided = d.Decided[:min(len(d.Decided), 20)]
	c.render(w, r, code, "holds", page{Title: "Holds", Nav: "holds", Error: errMsg, Data: d})
}

func (c *Console) decideHold(w http.ResponseWriter, r *http.Request) {
	id, what := r.PathValue("id"), r.PathValue("decision")
	d, err := c.decision(r)
	if err != nil {
		c.holdsPage(w, r, http.StatusBadRequest, err.Error())
		return
	}
	switch what {
	case "approve":
		_, err = c.cfg.Store.Approve(r.Context(), id, d)
	case "reject":
		_, err = c.cfg.Store.Reject(r.Context(), id, d)
	default:
		c.fail(w, r, nil, http.StatusNotFound, "No such decision.")
		return
	}
	switch {
	case errors.Is(err, enforcer.ErrHoldDecided):
		c.holdsPage(w, r, http.StatusConflict, "That hold was already decided (or superseded by a newer observation).")
		return
	case errors.Is(err, enforcer.ErrNotFound):
		c.holdsPage(w, r, http.StatusNotFound, "No such hold.")
		return
	case err != nil:
		c.log.Error("console: decide hold", "hold", show(id, 64), "decision", what, "error", err)
		c.holdsPage(w, r, http.StatusInternalServerError, "The decision failed; nothing was changed.")
		return
	}
	http.Redirect(w, r, "/holds?done="+what+"d", http.StatusSeeOther)
}

type searchData struct {
	Query    string
	Report   *enforcer.StatusReport
	NotFound bool
	CanCheck bool
}

func (c *Console) search(w http.ResponseWriter, r *http.Request) {
	c.searchPage(w, r, http.StatusOK, r.URL.Query().Get("q"), "")
}

func (c *Console) searchPage(w http.ResponseWriter, r *http.Request, code int, q, errMsg string) {
	d := searchData{Query: q, CanCheck: c.cfg.Enqueue != nil}
	q = strings.TrimSpace(q)
	if q != "" && len(q) <= 1024 {
		rep, err := c.cfg.Store.Status(r.Context(), q)
		switch {
		case errors.Is(err, enforcer.ErrNotFound):
			d.NotFound = true
		case err != nil:
			c.log.Error("console: search", "error", err)
			errMsg = "The search failed."
			code = http.StatusInternalServerError
		default:
			d.Report = &rep
		}
	} else if len(q) > 1024 {
		d.NotFound = true
	}
	c.render(w, r, code, "search", page{Title: "Search", Nav: "search", Error: errMsg, Data: d})
}

func (c *Console) checkNow(w http.ResponseWriter, r *http.Request) {
	domain := strings.TrimSpace(r.PostFormValue("domain"))
	q := r.PostFormValue("q")
	if c.cfg.Enqueue == nil {
		c.searchPage(w, r, http.StatusServiceUnavailable, q, "Check now needs a NATS connection.")
		return
	}
	pending, err := c.cfg.Enqueue(r.Context(), domain)
	switch {
	case errors.Is(err, producer.ErrUnknownDomain):
		c.searchPage(w, r, http.StatusNotFound, q, "That domain is not watched.")
		return
	case err != nil:
		c.log.Error("console: check now", "domain", show(domain, 64), "error", err)
		c.searchPage(w, r, http.StatusServiceUnavailable, q, "The check could not be enqueued.")
		return
	}
	v := current(r)
	if err := c.cfg.Store.RecordAction(r.Context(), enforcer.Decision{By: v.User.Name, Note: strings.TrimSpace(r.PostFormValue("note")), Via: "console"},
		schemas.OperatorAction{Action: schemas.ActionCheckNow, Domain: domain}); err != nil {
		c.log.Error("console: record check now", "error", err)
	}
	done := "checking"
	if pending {
		done = "pending"
	}
	http.Redirect(w, r, "/search?"+url.Values{"q": {q}, "done": {done}}.Encode(), http.StatusSeeOther)
}

type auditData struct {
	Filter    AuditFilter
	From, To  string
	Types     []string
	Reasons   []string
	Rows      []AuditRow
	Next      string // query string of the next page
	FirstPage string // query string of the first page ("" when on it)
}

func (c *Console) audit(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	d := auditData{Types: auditTypes, From: q.Get("from"), To: q.Get("to")}
	for _, p := range lifecycle.Phases {
		if rs := lifecycle.ReasonFor(p); rs != "" {
			d.Reasons = append(d.Reasons, string(rs))
		}
	}
	d.Reasons = append(d.Reasons, string(lifecycle.ReasonReregistered))
	d.Filter = AuditFilter{Type: q.Get("type"), Domain: strings.ToLower(strings.TrimSpace(q.Get("domain"))), Reason: q.Get("reason")}
	var bad []string
	parseDay := func(s string, plusDay bool) *time.Time {
		if s == "" {
			return nil
		}
		t, err := time.Parse("2006-01-02", s)
		if err != nil {
			bad = append(bad, "dates are YYYY-MM-DD")
			return nil
		}
		if plusDay {
			t = t.Add(24 * time.Hour)
		}
		return &t
	}
	d.Filter.From, d.Filter.To = parseDay(d.From, false), parseDay(d.To, true)
	var after *auditCursor
	if cur := q.Get("after"); cur != "" {
		if after = decodeCursor(cur); after == nil {
			bad = append(bad, "the page link is broken; start from the first page")
		}
		base := url.Values{}
		for k, v := range q {
			if k != "after" {
				base[k] = v
			}
		}
		d.FirstPage = "?" + base.Encode()
	}
	if len(bad) > 0 {
		c.render(w, r, http.StatusBadRequest, "audit", page{Title: "Audit log", Nav: "audit", Error: strings.Join(bad, "; "), Data: d})
		return
	}
	rows, next, err := c.auditPage(r.Context(), d.Filter, after)
	if err != nil {
		c.log.Error("console: audit", "error", err)
		c.fail(w, r, nil, http.StatusInternalServerError, "The audit log could not be read.")
		return
	}
	d.Rows = rows
	if next != nil {
		nq := url.Values{}
		for k, v := range q {
			nq[k] = v
		}
		nq.Set("after", encodeCursor(*next))
		d.Next = "?" + nq.Encode()
	}
	c.render(w, r, http.StatusOK, "audit", page{Title: "Audit log", Nav: "audit", Data: d})
}

func encodeCursor(c auditCursor) string {
	return base64.RawURLEncoding.EncodeToString([]byte(c.At.UTC().Format(time.RFC3339Nano) + "|" + c.ID))
}

func decodeCursor(s string) *auditCursor {
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil
	}
	at, id, ok := strings.Cut(string(raw), "|")
	t, err := time.Parse(time.RFC3339Nano, at)
	if !ok || err != nil || len(id) != 36 {
		return nil
	}
	return &auditCursor{At: t, ID: id}
}

func (c *Console) breaker(w http.ResponseWriter, r *http.Request) {
	c.breakerPage(w, r, http.StatusOK, "")
}

func (c *Console) breakerPage(w http.ResponseWriter, r *http.Request, code int, errMsg string) {
	st, err := c.cfg.Store.BreakerStatus(r.Context())
	if err != nil {
		c.log.Error("console: breaker", "error", err)
		c.fail(w, r, nil, http.StatusInternalServerError, "The breaker could not be read.")
		return
	}
	c.render(w, r, code, "breaker", page{Title: "Breaker", Nav: "breaker", Error: errMsg, Data: st})
}

func (c *Console) resume(w http.ResponseWriter, r *http.Request) {
	d, err := c.decision(r)
	if err != nil {
		c.breakerPage(w, r, http.StatusBadRequest, err.Error())
		return
	}
	if _, err := c.cfg.Store.Resume(r.Context(), d); err != nil {
		c.log.Error("console: resume", "error", err)
		c.breakerPage(w, r, http.StatusInternalServerError, "Resuming failed.")
		return
	}
	http.Redirect(w, r, "/breaker?done=resumed", http.StatusSeeOther)
}

type dlqData struct {
	Entries   []deadletters.Entry
	Available bool
}

// dlqListLimit bounds the dead letters one page lists.
const dlqListLimit = 200

func (c *Console) dlq(w http.ResponseWriter, r *http.Request) {
	c.dlqPage(w, r, http.StatusOK, "")
}

func (c *Console) dlqPage(w http.ResponseWriter, r *http.Request, code int, errMsg string) {
	var d dlqData
	if c.cfg.JS != nil {
		if s, err := deadletters.Stream(r.Context(), c.cfg.JS, c.cfg.Topology.Namespace); err == nil {
			if d.Entries, err = deadletters.List(r.Context(), s, dlqListLimit); err == nil {
				d.Available = true
			} else {
				c.log.Error("console: dlq", "error", err)
			}
		}
	}
	if !d.Available && errMsg == "" {
		errMsg = "The DLQ stream cannot be read (no NATS connection?)."
	}
	c.render(w, r, code, "dlq", page{Title: "Dead letters", Nav: "dlq", Error: errMsg, Data: d})
}

func (c *Console) replay(w http.ResponseWriter, r *http.Request) {
	d, err := c.decision(r)
	if err != nil {
		c.dlqPage(w, r, http.StatusBadRequest, err.Error())
		return
	}
	if c.cfg.JS == nil {
		c.dlqPage(w, r, http.StatusServiceUnavailable, "Replay needs a NATS connection.")
		return
	}
	s, err := deadletters.Stream(r.Context(), c.cfg.JS, c.cfg.Topology.Namespace)
	if err != nil {
		c.dlqPage(w, r, http.StatusServiceUnavailable, "The DLQ stream cannot be read.")
		return
	}
	var seqs []uint64
	if r.PostFormValue("all") != "" {
		entries, err := deadletters.List(r.Context(), s, 1<<30)
		if err != nil {
			c.dlqPage(w, r, http.StatusServiceUnavailable, "The DLQ stream cannot be read.")
			return
		}
		for _, e := range entries {
			if e.Unreadable == "" { // not a dead letter: never replayed
				seqs = append(seqs, e.Seq)
			}
		}
	} else {
		n, err := strconv.ParseUint(r.PostFormValue("seq"), 10, 64)
		if err != nil {
			c.dlqPage(w, r, http.StatusBadRequest, "That is not a dead-letter sequence number.")
			return
		}
		seqs = append(seqs, n)
	}
	for _, seq := range seqs {
		e, err := deadletters.Replay(r.Context(), c.cfg.JS, s, c.cfg.Topology, seq, "console:"+d.By, time.Now())
		if err != nil {
			c.log.Error("console: replay", "seq", seq, "error", err)
			c.dlqPage(w, r, http.StatusConflict, "Replaying dead letter "+strconv.FormatUint(seq, 10)+" failed (already replayed?); the ones before it were replayed.")
			return
		}
		if err := c.cfg.Store.RecordAction(r.Context(), d, schemas.OperatorAction{Action: schemas.ActionDLQReplay,
			DLQSequence: seq, Stream: e.Letter.Stream, Subject: e.Letter.Subject}); err != nil {
			c.log.Error("console: record replay", "seq", seq, "error", err)
		}
	}
	http.Redirect(w, r, "/dlq?done=replayed", http.StatusSeeOther)
}
