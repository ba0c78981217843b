package hostapi

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"strings"
)

// MinTokenLength is the shortest token accepted in DOMAINGUARD_API_TOKENS.
const MinTokenLength = 16

// Token is one named bearer token. Only a digest of the value is kept.
type Token struct {
	Name   string
	digest [sha256.Size]byte
}

// NewToken makes a token from its name and value.
func NewToken(name, value string) Token {
	return Token{Name: name, digest: sha256.Sum256([]byte(value))}
}

// ParseTokens reads DOMAINGUARD_API_TOKENS: comma-separated name:token
// pairs. Names are letters, digits, '.', '_' and '-'; tokens are at least
// MinTokenLength characters without spaces or commas. Errors never repeat a
// token value.
func ParseTokens(spec string) ([]Token, error) {
	var out []Token
	seen := map[string]bool{}
	for i, pair := range strings.Split(spec, ",") {
		pair = strings.TrimSpace(pair)
		if pair == "" {
			continue
		}
		name, value, ok := strings.Cut(pair, ":")
		if !ok {
			return nil, fmt.Errorf("DOMAINGUARD_API_TOKENS item %d: want name:token", i+1)
		}
		if name == "" || strings.TrimLeft(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != "" {
			return nil, fmt.Errorf("DOMAINGUARD_API_TOKENS item %d: name must be letters, digits, '.', '_' or '-'", i+1)
		}
		if seen[name] {
			return nil, fmt.Errorf("DOMAINGUARD_API_TOKENS: name %q appears twice", name)
		}
		if len(value) < MinTokenLength || strings.ContainsAny(value, " \t\r\n") {
			return nil, fmt.Errorf("DOMAINGUARD_API_TOKENS: token of %q must be at least %d characters without spaces", name, MinTokenLength)
		}
		seen[name] = true
		out = append(out, NewToken(name, value))
	}
	return out, nil
}

// match returns the name of the token equal to presented. Every token is
// compared, in constant time, whatever matches.
func match(tokens []Token, presented string) (string, bool) {
	d := sha256.Sum256([]byte(presented))
	name, found := "", 0
	for _, t := range tokens {
		if subtle.ConstantTimeCompare(d[:], t.digest[:]) == 1 {
			name, found = t.Name, 1
		}
	}
	return name, found == 1
}
