// Package termtext makes untrusted text safe to print on an operator's
// terminal: addresses, subjects, errors and evidence come from hosts,
// registries and message payloads, and an escape sequence among them could
// rewrite the screen, hide lines or change the terminal's title.
package termtext

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Escape returns s with every control character (C0, DEL, C1), every
// Unicode format character (bidi overrides, zero-width characters) and
// every invalid UTF-8 byte written as a Go escape (\x1b, \u202e), and
// backslashes doubled, so the result shows exactly what s held and cannot
// act on a terminal. Printable text is unchanged.
func Escape(s string) string {
	clean := true
	for _, r := range s {
		if r == utf8.RuneError || r == '\\' || unsafeRune(r) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\\':
			b.WriteString(`\\`)
		case unsafeRune(r) && r < 0x100:
			fmt.Fprintf(&b, `\x%02x`, r)
		case unsafeRune(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
		i += size
	}
	return b.String()
}

func unsafeRune(r rune) bool {
	return unicode.IsControl(r) || unicode.Is(unicode.Cf, r)
}

// EscapeText is Escape for a multi-line report: newlines and tabs (its
// layout) are kept, everything else Escape escapes is escaped. Use it on a
// report whose fields were already checked to hold no newlines or tabs of
// their own (addresses and evidence are).
func EscapeText(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		cells := strings.Split(l, "\t")
		for j, c := range cells {
			cells[j] = Escape(c)
		}
		lines[i] = strings.Join(cells, "\t")
	}
	return strings.Join(lines, "\n")
}
