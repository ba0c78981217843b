package lifecycle

import (
	"fmt"
	"time"
)

// MaxClockSkew is how far in the future an observation's observed_at may
// lie (the checker's clock ahead of the enforcer's). An observation dated
// later is refused: applied, it would make every real observation until
// then look stale (older than the last applied one) and so switch
// enforcement off for the domain.
const MaxClockSkew = 5 * time.Minute

// CheckObservedAt refuses an observation stamped more than MaxClockSkew
// after now.
func CheckObservedAt(observedAt, now time.Time) error {
	if ahead := observedAt.Sub(now); ahead > MaxClockSkew {
		return fmt.Errorf("observed_at %s is %s in the future (more than the %s clock skew allowed)",
			observedAt.UTC().Format(time.RFC3339), ahead.Round(time.Second), MaxClockSkew)
	}
	return nil
}
