package dialguard

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"testing"
)

func TestClassify(t *testing.T) {
	for _, tc := range []struct{ addr, class string }{
		{"127.0.0.1", "loopback"},
		{"127.255.0.9", "loopback"},
		{"::1", "loopback"},
		{"::ffff:127.0.0.1", "loopback"}, // IPv4-mapped
		{"0.0.0.0", "unspecified"},
		{"::", "unspecified"},
		{"10.1.2.3", "private"},
		{"172.16.0.1", "private"},
		{"172.31.255.255", "private"},
		{"192.168.1.1", "private"},
		{"::ffff:192.168.1.1", "private"},
		{"fd12:3456::1", "private"}, // RFC 4193 ULA
		{"169.254.169.254", "link-local"},
		{"fe80::1%eth0", "link-local"},
		{"100.64.0.1", "shared (carrier-grade NAT)"},
		{"100.127.255.254", "shared (carrier-grade NAT)"},
		{"64:ff9b::a00:1", "private"}, // NAT64 of 10.0.0.1
		{"0.1.2.3", "this-network"},
		{"239.1.2.3", "multicast"},
		{"ff02::1", "link-local"},
		{"255.255.255.255", "reserved"},
		{"fec0::1", "site-local"},
		// Public addresses.
		{"192.0.2.1", ""}, // documentation ranges are not reachable anyway, and not internal
		{"8.8.8.8", ""},
		{"172.32.0.1", ""},
		{"100.128.0.1", ""},
		{"2001:4860:4860::8888", ""},
		{"64:ff9b::808:808", ""}, // NAT64 of 8.8.8.8
	} {
		if got := Classify(netip.MustParseAddr(tc.addr)); got != tc.class {
			t.Errorf("Classify(%s) = %q, want %q", tc.addr, got, tc.class)
		}
	}
}

// The dial check sees the address dialed after resolution: a name that
// resolves to loopback is refused as a literal is, unless named.
func TestDialContext(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	for _, tc := range []struct {
		name    string
		guard   Guard
		named   []string
		address string
		refused bool
	}{
		{name: "literal loopback", address: "127.0.0.1:" + port, refused: true},
		{name: "name resolving to loopback", address: "localhost:" + port, refused: true},
		{name: "named by the operator", named: []string{"http://127.0.0.1:" + port + "/rdap/"}, address: "127.0.0.1:" + port},
		{name: "named host, other port", named: []string{"http://127.0.0.1:1/"}, address: "127.0.0.1:" + port, refused: true},
		{name: "named as a name, dialed as that name", named: []string{"https://LOCALHOST.:" + port}, address: "localhost:" + port},
		{name: "private allowed", guard: Guard{AllowPrivate: true}, address: "127.0.0.1:" + port},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := tc.guard
			g.Name(tc.named...)
			conn, err := g.DialContext(nil)(context.Background(), "tcp", tc.address)
			if conn != nil {
				conn.Close()
			}
			var refused *RefusedError
			switch {
			case tc.refused && (!errors.As(err, &refused) || !errors.Is(err, ErrRefused) || refused.Class != "loopback"):
				t.Fatalf("dial %s: %v, want refused as loopback", tc.address, err)
			case !tc.refused && err != nil:
				t.Fatalf("dial %s: %v, want connected", tc.address, err)
			}
		})
	}
}

func TestCheckLiteral(t *testing.T) {
	var g Guard
	g.Name("https://10.0.0.7/")
	for raw, refused := range map[string]bool{
		"https://10.0.0.8/domain/x.com":       true,
		"https://[::ffff:a00:8]/domain/x.com": true,
		"https://10.0.0.7/domain/x.com":       false, // named
		"https://rdap.example/domain/x.com":   false, // a name: the proxy resolves it
		"https://192.0.2.10:8443/":            false,
	} {
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		if err := g.CheckLiteral(u); (err != nil) != refused {
			t.Errorf("CheckLiteral(%s) = %v, want refused %v", raw, err, refused)
		}
	}
}

func TestCheckAddress(t *testing.T) {
	g := Guard{Hint: "set X"}
	g.NameAddress("10.0.0.53:53", "[FD00::53]:5353", "not an address")
	for address, class := range map[string]string{
		"10.0.0.1:53":           "private",
		"127.0.0.1:53":          "loopback",
		"169.254.169.254:53":    "link-local",
		"[fd00::1]:53":          "private",
		"[::ffff:127.0.0.1]:53": "loopback",
		"[64:ff9b::a00:1]:53":   "private", // NAT64 of 10.0.0.1
		"ns.example:53":         "unparseable",
		"10.0.0.53:53":          "",        // named
		"[fd00::53]:5353":       "",        // named, written another way
		"10.0.0.53:54":          "private", // named on another port only
		"192.0.2.1:53":          "",
		"[2001:db8::1]:53":      "",
	} {
		err := g.CheckAddress(address)
		var re *RefusedError
		switch {
		case class == "" && err != nil:
			t.Errorf("CheckAddress(%s) = %v, want allowed", address, err)
		case class != "" && (!errors.As(err, &re) || re.Class != class || !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "set X")):
			t.Errorf("CheckAddress(%s) = %v, want refused as %s with the hint", address, err, class)
		}
	}
	g.AllowPrivate = true
	if err := g.CheckAddress("127.0.0.1:53"); err != nil {
		t.Errorf("AllowPrivate: %v", err)
	}
}
