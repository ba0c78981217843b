package deploy_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/domainguard/domainguard/schemas"
)

// TestIntegrationDoc checks that docs/INTEGRATION.md covers every subject
// other systems publish or consume and that its schema links resolve.
func TestIntegrationDoc(t *testing.T) {
	doc := string(readRepoFile(t, "docs/INTEGRATION.md"))
	for _, s := range schemas.Subjects() {
		if strings.HasPrefix(s, "audit.") || strings.HasPrefix(s, "accounts.") {
			if !strings.Contains(doc, "`"+s+"`") {
				t.Errorf("INTEGRATION.md does not describe %s", s)
			}
		}
	}
	links := regexp.MustCompile(`\]\((\.\./[^)#]+)\)`).FindAllStringSubmatch(doc, -1)
	if len(links) < 10 {
		t.Errorf("INTEGRATION.md links %d files, expected the schemas", len(links))
	}
	for _, l := range links {
		if _, err := os.Stat(filepath.Join(repoPath(t, "docs"), filepath.FromSlash(l[1]))); err != nil {
			t.Errorf("INTEGRATION.md links %s: %v", l[1], err)
		}
	}
}

// TestOperatingDocCommands checks that the commands OPERATING.md tells
// operators to run exist (or are promised by DESIGN.md §5).
func TestOperatingDocCommands(t *testing.T) {
	registered, designed := commandsKnown(t)
	doc := string(readRepoFile(t, "docs/OPERATING.md"))
	seen := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)(?:^|\x60|-- )domainguard ([a-z]+)`).FindAllStringSubmatch(doc, -1) {
		if !seen[m[1]] {
			seen[m[1]] = true
			checkCommand(t, "OPERATING.md", m[1], registered, designed)
		}
	}
	for _, c := range []string{"holds", "breaker", "dlq", "migrate"} {
		if !seen[c] {
			t.Errorf("OPERATING.md does not show domainguard %s", c)
		}
	}
}
