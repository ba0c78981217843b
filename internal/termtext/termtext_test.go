package termtext

import "testing"

func TestEscape(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"alice@example.com", "alice@example.com"},
		{"Émile@exämple.com", "Émile@exämple.com"},
		{"\x1b]0;pwned\x07title", `\x1b]0;pwned\x07title`},
		{"red\x1b[31m", `red\x1b[31m`},
		{"line\nbreak\rback\ttab", `line\x0abreak\x0dback\x09tab`},
		{"\u202egnp.exe", `\u202egnp.exe`},
		{"c1\u009bcsi", `c1\x9bcsi`},
		{"bad\xffutf8", `bad\xffutf8`},
		{`back\slash`, `back\\slash`},
		{"zero\u200bwidth", `zero\u200bwidth`},
	} {
		if got := Escape(tc.in); got != tc.want {
			t.Errorf("Escape(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func FuzzEscape(f *testing.F) {
	f.Add("\x1b[2J\x1b[H")
	f.Add("ok")
	f.Fuzz(func(t *testing.T, s string) {
		out := Escape(s)
		for _, r := range out {
			if unsafeRune(r) || r == 0xfffd && !containsReplacement(s) {
				t.Fatalf("Escape(%q) = %q keeps %U", s, out, r)
			}
		}
	})
}

func containsReplacement(s string) bool {
	for _, r := range s {
		if r == 0xfffd {
			return true
		}
	}
	return false
}

func TestEscapeTextKeepsLayout(t *testing.T) {
	in := "email\ta@x.com\x1b[2J user\u202e1\nnext\tline\n"
	want := "email\ta@x.com\\x1b[2J user\\u202e1\nnext\tline\n"
	if got := EscapeText(in); got != want {
		t.Errorf("EscapeText = %q, want %q", got, want)
	}
}
