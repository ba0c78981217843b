package producer

import (
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/domainguard/domainguard/lifecycle"
)

// sweepPass is one class of lifecycle.UrgencyRule as SQL: a filter on due
// domains and its arguments.
type sweepPass struct {
	name   string
	filter string // SQL condition over domains
	args   pgx.NamedArgs
}

// sweepPasses translates lifecycle.UrgencyRule, at now, into one pass per
// urgency class, most urgent first. A class's filter is its condition and
// none of the earlier classes' conditions, as the rule's first match.
func sweepPasses(now time.Time) ([]sweepPass, error) {
	rule := lifecycle.UrgencyRule()
	passes := make([]sweepPass, 0, len(rule))
	args := pgx.NamedArgs{}
	var earlier []string
	for _, class := range rule {
		cond, err := urgencySQL(class.When, now, args)
		if err != nil {
			return nil, fmt.Errorf("urgency class %q: %w", class.Name, err)
		}
		filter := cond
		for _, e := range earlier {
			filter += " AND NOT " + e
		}
		passes = append(passes, sweepPass{name: class.Name, filter: filter, args: args})
		earlier = append(earlier, cond)
	}
	return passes, nil
}

// urgencySQL translates one urgency condition into a SQL condition over
// the domains table that is never NULL (so that NOT is its complement),
// adding the values it compares with to args.
func urgencySQL(c lifecycle.UrgencyCond, now time.Time, args pgx.NamedArgs) (string, error) {
	arg := func(v any) string {
		name := fmt.Sprintf("urgency_%d", len(args))
		args[name] = v
		return "@" + name
	}
	switch c := c.(type) {
	case lifecycle.NeverChecked:
		// The zero time counts as never checked, as in lifecycle.
		return "(last_checked_at IS NULL OR last_checked_at = " + arg(time.Time{}) + ")", nil
	case lifecycle.PhaseIn:
		phases := make([]string, len(c))
		for i, p := range c {
			phases[i] = string(p)
		}
		return "(phase = ANY(" + arg(phases) + "::text[]))", nil
	case lifecycle.ExpiresWithin:
		return "(expires_at IS NOT NULL AND expires_at <= " + arg(now.Add(time.Duration(c))) + ")", nil
	case lifecycle.AnyOf:
		if len(c) == 0 {
			return "false", nil
		}
		terms := make([]string, len(c))
		for i, sub := range c {
			s, err := urgencySQL(sub, now, args)
			if err != nil {
				return "", err
			}
			terms[i] = s
		}
		return "(" + strings.Join(terms, " OR ") + ")", nil
	case lifecycle.Not:
		s, err := urgencySQL(c.Cond, now, args)
		if err != nil {
			return "", err
		}
		return "(NOT " + s + ")", nil
	case lifecycle.Always:
		return "true", nil
	}
	return "", fmt.Errorf("no SQL for urgency condition %T", c)
}
