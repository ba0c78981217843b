// Package dialguard refuses outgoing connections to loopback, private,
// link-local and other non-public addresses, unless the operator named the
// address. A lookup client follows URLs it did not choose (the RDAP
// bootstrap lists any https://host:port; a server may redirect): without the
// guard, whoever controls that data can aim lookups at internal services.
//
// The check is on the IP address actually dialed (net.Dialer.Control), after
// name resolution, so a public-looking name that resolves to 127.0.0.1 is
// refused as well as a literal one, and a name cannot resolve to a public
// address for a check and to a private one for the connection.
// CheckAddress judges an ip:port a client picked itself before dialing it
// (the DNS evidence client, whose nameserver addresses come from glue).
package dialguard

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// ErrRefused is the error every refusal wraps.
var ErrRefused = errors.New("connection to a non-public address refused")

// RefusedError says which address was refused and why.
type RefusedError struct {
	// Target is the host:port the client asked for (a name or a literal).
	Target string
	// Addr is the IP address it resolved to.
	Addr netip.Addr
	// Class names the kind of address (loopback, private, ...).
	Class string
	// Hint tells the operator how to allow it.
	Hint string
}

func (e *RefusedError) Error() string {
	msg := fmt.Sprintf("refusing to connect to %s: %s is a %s address the operator did not name", e.Target, e.Addr, e.Class)
	if e.Hint != "" {
		msg += " (" + e.Hint + ")"
	}
	return msg
}

func (e *RefusedError) Unwrap() error { return ErrRefused }

// Guard decides which addresses a client may dial. The zero value refuses
// every non-public address.
type Guard struct {
	// AllowPrivate lets every address through.
	AllowPrivate bool
	// Hint is added to refusal messages (e.g. the variable that allows
	// private lookups).
	Hint string
	// named holds the host:port targets the operator named; they are
	// dialed whatever they resolve to.
	named map[string]bool
}

// Name marks the host:port of each URL as named by the operator, so the
// guard lets it through whatever address it resolves to. URLs without a
// host (file:///...) and unparseable ones are ignored. The port defaults to
// the scheme's (443 for https, 80 for http). Call it before the guard is
// used: it is not safe for concurrent use with dialing.
func (g *Guard) Name(rawURLs ...string) {
	if g.named == nil {
		g.named = make(map[string]bool)
	}
	for _, raw := range rawURLs {
		u, err := url.Parse(strings.TrimSpace(raw))
		if err != nil {
			continue
		}
		if address, ok := HostPort(u); ok {
			g.named[address] = true
		}
	}
}

// NameAddress marks each host:port (a DNS server from the settings) as
// named by the operator, like Name for URLs. Strings that are not
// host:port are ignored. Not safe for concurrent use with dialing.
func (g *Guard) NameAddress(addresses ...string) {
	if g.named == nil {
		g.named = make(map[string]bool)
	}
	for _, address := range addresses {
		if host, port, err := net.SplitHostPort(strings.TrimSpace(address)); err == nil && host != "" {
			g.named[target(host, port)] = true
		}
	}
}

// HostPort returns u's host:port in the form a dialer receives it (lower
// case, IPv4-mapped addresses unmapped), the port defaulting to the
// scheme's. ok is false when u has no host or no port can be known.
func HostPort(u *url.URL) (address string, ok bool) {
	if u.Hostname() == "" {
		return "", false
	}
	port := u.Port()
	if port == "" {
		switch strings.ToLower(u.Scheme) {
		case "https":
			port = "443"
		case "http":
			port = "80"
		default:
			return "", false
		}
	}
	return target(u.Hostname(), port), true
}

// Named reports whether address (host:port, as a dialer receives it) was
// named by the operator.
func (g *Guard) Named(address string) bool {
	host, port, err := net.SplitHostPort(address)
	return err == nil && g.named[target(host, port)]
}

func target(host, port string) string {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if a, err := netip.ParseAddr(host); err == nil {
		host = a.Unmap().String()
	}
	return net.JoinHostPort(host, port)
}

// DialContext returns a dial function for http.Transport: named targets
// are dialed as they are; every other connection is checked, after name
// resolution, on the address actually dialed.
func (g *Guard) DialContext(d *net.Dialer) func(ctx context.Context, network, address string) (net.Conn, error) {
	if d == nil {
		d = &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	}
	return func(ctx context.Context, network, address string) (net.Conn, error) {
		if g.AllowPrivate || g.Named(address) {
			return d.DialContext(ctx, network, address)
		}
		checked := *d
		checked.Control = func(_, resolved string, _ syscall.RawConn) error {
			return g.check(address, resolved)
		}
		return checked.DialContext(ctx, network, address)
	}
}

// check refuses resolved (ip:port) unless it is a public address.
func (g *Guard) check(target, resolved string) error {
	host, _, err := net.SplitHostPort(resolved)
	if err != nil {
		host = resolved
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return &RefusedError{Target: target, Class: "unparseable", Hint: g.Hint}
	}
	if class := Classify(addr); class != "" {
		return &RefusedError{Target: target, Addr: addr.WithZone(""), Class: class, Hint: g.Hint}
	}
	return nil
}

// CheckLiteral refuses a URL whose host is a literal non-public IP
// address the operator did not name. It is for requests sent through a
// proxy, where the guard never sees the address dialed: the proxy resolves
// names itself, so only literals can be judged here.
func (g *Guard) CheckLiteral(u *url.URL) error {
	address, ok := HostPort(u)
	if !ok {
		return nil
	}
	if _, err := netip.ParseAddr(u.Hostname()); err != nil {
		return nil // a name: the proxy resolves it
	}
	return g.CheckAddress(address)
}

// CheckAddress refuses address (ip:port, the IP a literal) unless it is
// public, the operator named it, or AllowPrivate is set. It is for clients
// that choose the addresses they dial from data they did not choose (the
// DNS evidence client following glue): no resolution happens between the
// check and the dial. A name is refused: it cannot be judged unresolved.
func (g *Guard) CheckAddress(address string) error {
	if g.AllowPrivate || g.Named(address) {
		return nil
	}
	return g.check(address, address)
}

// nonPublic lists the ranges refused besides what netip classifies
// itself (loopback, private, link-local, multicast, unspecified).
var nonPublic = []struct {
	prefix netip.Prefix
	class  string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), "this-network"},
	// Carrier-grade NAT (RFC 6598): the provider's internal network, never a
	// public service.
	{netip.MustParsePrefix("100.64.0.0/10"), "shared (carrier-grade NAT)"},
	{netip.MustParsePrefix("192.0.0.0/24"), "IETF protocol assignment"},
	{netip.MustParsePrefix("198.18.0.0/15"), "benchmarking"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved"}, // and the broadcast address
	{netip.MustParsePrefix("fec0::/10"), "site-local"},
}

// nat64 is the well-known NAT64 prefix (RFC 6052): its last 32 bits are an
// IPv4 address, reached through the translator.
var nat64 = netip.MustParsePrefix("64:ff9b::/96")

// Classify names the kind of a non-public address ("loopback", "private",
// "link-local", ...), or returns "" for a public one. IPv4-mapped and NAT64
// IPv6 addresses are judged by the IPv4 address they carry.
func Classify(addr netip.Addr) string {
	addr = addr.WithZone("").Unmap()
	if addr.Is6() && nat64.Contains(addr) {
		b := addr.As16()
		addr = netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]})
	}
	switch {
	case !addr.IsValid():
		return "invalid"
	case addr.IsUnspecified():
		return "unspecified"
	case addr.IsLoopback():
		return "loopback"
	case addr.IsPrivate():
		return "private" // RFC 1918 and RFC 4193 (ULA fc00::/7)
	case addr.IsLinkLocalUnicast(), addr.IsLinkLocalMulticast():
		return "link-local"
	case addr.IsMulticast(), addr.IsInterfaceLocalMulticast():
		return "multicast"
	}
	for _, r := range nonPublic {
		if r.prefix.Contains(addr) {
			return r.class
		}
	}
	return ""
}
