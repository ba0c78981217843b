package schemas

import (
	"crypto/sha256"
	"strings"
	"time"

	"github.com/google/uuid"
)

// DerivedID returns a UUIDv7 (RFC 9562) that is a pure function of its
// inputs: the 48-bit timestamp is t in Unix milliseconds and the remaining
// 74 bits come from SHA-256 of parts joined with NUL bytes. Events whose id
// must be the same each time they are produced from the same input (a
// redelivered message) use it, so JetStream's Nats-Msg-Id de-duplication
// drops the repeat. Callers pass parts that identify the input and the kind
// of output, e.g. DerivedID(requestedAt, "DOMAIN_CHECKS", "42", "changed").
//
// Times before the Unix epoch are clamped to it; the id remains valid.
func DerivedID(t time.Time, parts ...string) string {
	sum := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	var id uuid.UUID
	ms := t.UnixMilli()
	if ms < 0 {
		ms = 0
	}
	id[0] = byte(ms >> 40)
	id[1] = byte(ms >> 32)
	id[2] = byte(ms >> 24)
	id[3] = byte(ms >> 16)
	id[4] = byte(ms >> 8)
	id[5] = byte(ms)
	copy(id[6:], sum[:10])
	id[6] = 0x70 | (id[6] & 0x0f) // version 7
	id[8] = 0x80 | (id[8] & 0x3f) // variant RFC 9562 (10xx)
	return id.String()
}
