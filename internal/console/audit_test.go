package console

import (
	"fmt"
	"html"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

var (
	olderRE = regexp.MustCompile(`href="(\?[^"]*after=[^"]+)" id="older"`)
	rowRE   = regexp.MustCompile(`page-(\d{3})@gone\.org`)
)

// The audit log pages by keyset: every row once, newest first, filters kept.
func TestAuditLogKeysetPages(t *testing.T) {
	f := newFixture(t)
	base := time.Now().UTC().Add(-time.Hour)
	for i := range 120 {
		// Pairs share a timestamp: the id breaks the tie.
		f.exec(t, `INSERT INTO audit_log (id, type, domain, email, data, created_at) VALUES ($1, 'audit.email.unverified', 'gone.org', $2, '{"reason":"domain_released"}', $3)`,
			fmt.Sprintf("0190f1a2-0000-7000-9000-%012d", i), fmt.Sprintf("page-%03d@gone.org", i), base.Add(time.Duration(i/2)*time.Second))
	}
	c := newClient(t, f.srv.URL)
	c.login(viewerName)
	path := "/audit?type=audit.email.unverified&domain=gone.org&reason=domain_released"
	seen := map[string]bool{}
	var pages []int
	last := 1000
	for path != "" {
		resp, body := c.get(path)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d", path, resp.StatusCode)
		}
		rows := rowRE.FindAllStringSubmatch(body, -1)
		pages = append(pages, len(rows))
		for _, r := range rows {
			if seen[r[1]] {
				t.Errorf("row %s shown twice", r[1])
			}
			// Newest first; the two rows of a pair share a time and may come either way.
			if n, _ := strconv.Atoi(r[1]); n/2 > last/2 {
				t.Errorf("row %d after %d", n, last)
			} else {
				last = n
			}
			seen[r[1]] = true
		}
		path = ""
		if m := olderRE.FindStringSubmatch(body); m != nil {
			path = "/audit" + html.UnescapeString(m[1])
			if !strings.Contains(path, "domain=gone.org") {
				t.Errorf("next page lost the filter: %s", path)
			}
		}
	}
	if len(seen) != 120 || fmt.Sprint(pages) != "[50 50 20]" {
		t.Errorf("pages %v, %d distinct rows; want [50 50 20] and 120", pages, len(seen))
	}
	if resp, _ := c.get("/audit?after=garbage"); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("broken cursor: %d, want 400", resp.StatusCode)
	}
	if resp, _ := c.get("/audit?from=yesterday"); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("bad date: %d, want 400", resp.StatusCode)
	}
}
