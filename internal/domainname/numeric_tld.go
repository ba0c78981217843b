package domainname

import "fmt"

// checkTLD rejects an all-numeric last label: "1.2.3.4" is an IP address,
// not a domain name, and no TLD is numeric (RFC 3696 §2). Without this the
// PSL "*" rule made "x@1.2.3.4" an address on the domain "3.4". The label
// is cut by TLD, so a trailing dot (the root) is not taken for an empty,
// all-numeric label.
func checkTLD(ascii string) error {
	tld := TLD(ascii)
	for i := 0; i < len(tld); i++ {
		if tld[i] < '0' || tld[i] > '9' {
			return nil
		}
	}
	return fmt.Errorf("top-level label %q is numeric (an IP address is not a domain name)", tld)
}
