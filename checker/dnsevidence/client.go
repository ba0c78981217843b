package dnsevidence

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/time/rate"

	"github.com/domainguard/domainguard/checker"
	"github.com/domainguard/domainguard/internal/dialguard"
	"github.com/domainguard/domainguard/lifecycle"
)

// ProviderName is the name of this provider in evidence, logs and metrics.
const ProviderName = lifecycle.ProviderDNS

// maxReferralHops bounds how many zone cuts below the TLD are followed.
const maxReferralHops = 4

// refusalLogInterval spaces the warnings about refused nameserver
// addresses: one zone can be asked thousands of times a day, and the
// metric counts every refusal.
const refusalLogInterval = time.Minute

// Client asks the DNS; see the package doc. Safe for concurrent use.
type Client struct {
	cfg     Config
	metrics *metrics

	limMu    sync.Mutex
	limiters map[string]*rate.Limiter

	cacheMu sync.Mutex
	servers map[string]serverCacheEntry // tld → parent zone servers found through the resolver

	// guard judges the nameserver addresses learned from answers.
	guard *dialguard.Guard
	// refusalLog spaces the warnings about refused addresses.
	refusalLog rate.Sometimes
	// dialContext connects to a server; tests replace it to reach fake
	// servers at the addresses glue names.
	dialContext func(ctx context.Context, network, address string) (net.Conn, error)
}

type serverCacheEntry struct {
	addrs []string
	until time.Time
}

var _ checker.Provider = (*Client)(nil)

// New returns a Client for cfg (defaults filled in, the default resolver
// read from ResolvConf, then validated).
func New(cfg Config) (*Client, error) {
	cfg = cfg.WithDefaults()
	if cfg.Resolver == "" {
		r, err := ResolverFromFile(cfg.ResolvConf)
		switch {
		case err == nil:
			cfg.Resolver = r
		case len(cfg.TLDServers[WildcardTLD]) == 0:
			// Without a resolver, TLD servers cannot be found and MX/SOA
			// cannot be asked; delegations still work for TLDs with
			// configured servers.
			cfg.Logger.Warn("dns evidence: no resolver configured or found; only TLDs with configured servers get delegation answers", "error", err)
		}
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("dns evidence config: %w", err)
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	tlds := make(map[string][]string, len(cfg.TLDServers))
	for k, v := range cfg.TLDServers {
		tlds[strings.ToLower(strings.Trim(k, ". "))] = v
	}
	cfg.TLDServers = tlds
	guard := &dialguard.Guard{AllowPrivate: cfg.AllowPrivateLookups,
		Hint: "a nameserver address from a DNS answer; set DOMAINGUARD_ALLOW_PRIVATE_LOOKUPS=true to query it"}
	// The operator's servers are named: a learned address equal to one of
	// them is a server the operator already lets the client query.
	guard.NameAddress(cfg.Resolver)
	for _, servers := range tlds {
		guard.NameAddress(servers...)
	}
	return &Client{cfg: cfg, metrics: m, limiters: make(map[string]*rate.Limiter), servers: make(map[string]serverCacheEntry),
		guard: guard, refusalLog: rate.Sometimes{Interval: refusalLogInterval}, dialContext: (&net.Dialer{}).DialContext}, nil
}

// Name returns "dns".
func (c *Client) Name() string { return ProviderName }

// Resolver returns the host:port of the recursive resolver ("" if none).
func (c *Client) Resolver() string { return c.cfg.Resolver }

// RateKey returns "": the client limits each DNS server itself, so DNS
// lookups neither wait on nor count against the checker's per-provider
// lookup rate (see checker.RateKeyer).
func (c *Client) RateKey(string) string { return "" }

// ChecksPrivateNames reports true: the DNS is the only evidence for a name
// held under a private suffix (checker.PrivateNameChecker).
func (c *Client) ChecksPrivateNames() bool { return true }

// Lookup asks the DNS about domain and classifies the answer with
// lifecycle.ClassifyDNS (DNS as the only evidence). A failed delegation
// lookup is a temporary *checker.LookupError, never a phase.
func (c *Client) Lookup(ctx context.Context, domain string, prev *lifecycle.Observation) (lifecycle.Observation, error) {
	name := strings.ToLower(strings.TrimSuffix(strings.TrimSpace(domain), "."))
	now := c.cfg.Clock.Now()
	obs := lifecycle.Observation{Domain: name, Phase: lifecycle.PhaseUnknown,
		Evidence: lifecycle.Evidence{Provider: ProviderName, ObservedAt: now}}
	d, err := c.Evidence(ctx, name)
	if err != nil {
		return obs, err
	}
	obs.Evidence.Server = d.ParentServer
	obs.Evidence.DNS = d
	var why string
	obs.Phase, why, obs.Evidence = lifecycle.ClassifyDNS(obs.Evidence, prev, now, c.cfg.UndelegatedConfirm)
	if !obs.Phase.Known() {
		obs.Evidence.Detail = why
	}
	return obs, nil
}

// Evidence asks the parent zone for domain's delegation and, when it is
// delegated, the resolver for its MX and SOA. Only a failed delegation
// lookup is an error (temporary *checker.LookupError); a resolver that does
// not answer leaves MX (MXKnown false) and SOA empty.
//
// A zone whose every server learned from an answer is at a refused
// address (see addresses) is such an error too, wrapping
// checker.ErrLookupRefused: no evidence either way. It must not read as
// "not delegated": that would let whoever holds the zone (by pointing its
// glue at 10.0.0.1) make the names below it lapse and unverify their
// users. As an error it is a failed heartbeat that keeps the previous
// phase, as for an RDAP server the guard refuses.
func (c *Client) Evidence(ctx context.Context, domain string) (*lifecycle.DNSEvidence, error) {
	name := strings.ToLower(strings.TrimSuffix(strings.TrimSpace(domain), "."))
	if _, ok := dns.IsDomainName(name); !ok || !strings.Contains(name, ".") {
		return nil, &checker.LookupError{Provider: ProviderName, Domain: name, Err: fmt.Errorf("invalid domain name %q", domain)}
	}
	pa, server, err := c.delegation(ctx, name)
	if err != nil {
		return nil, &checker.LookupError{Provider: ProviderName, Domain: name, Temporary: true, Err: err}
	}
	d := &lifecycle.DNSEvidence{Delegated: pa.Delegated, Hosted: pa.Hosted, Rcode: pa.Rcode, ParentServer: server, Nameservers: pa.Nameservers}
	if !d.Present() || c.cfg.Resolver == "" {
		return d, nil
	}
	fqdn := dns.Fqdn(name)
	if m, err := c.askResolver(ctx, fqdn, dns.TypeMX); err == nil {
		d.MXKnown, d.MX = true, MXHosts(m)
	} else {
		c.cfg.Logger.Debug("dns evidence: MX not known", "domain", name, "error", err)
	}
	if m, err := c.askResolver(ctx, fqdn, dns.TypeSOA); err == nil {
		d.SOASerial, d.SOAMname, _ = SOAOf(m, fqdn)
	} else {
		c.cfg.Logger.Debug("dns evidence: SOA not known", "domain", name, "error", err)
	}
	return d, nil
}

// HasServers reports whether delegations under tld can be asked: servers
// are configured for it (or "*"), or a resolver is there to find them.
func (c *Client) HasServers(tld string) bool {
	return len(c.configured(tld)) > 0 || c.cfg.Resolver != ""
}

func (c *Client) configured(tld string) []string {
	if s := c.cfg.TLDServers[tld]; len(s) > 0 {
		return s
	}
	return c.cfg.TLDServers[WildcardTLD]
}

// delegation walks from the TLD's servers down to the parent zone of name.
func (c *Client) delegation(ctx context.Context, name string) (ParentAnswer, string, error) {
	fqdn := dns.Fqdn(name)
	labels := dns.SplitDomainName(fqdn)
	tld := labels[len(labels)-1]
	servers, err := c.parentServers(ctx, tld)
	if err != nil {
		return ParentAnswer{}, "", err
	}
	zone := dns.Fqdn(tld)
	hosted := lifecycle.HostedCounts(name)
	for hop := 0; ; hop++ {
		a, server, err := c.askParent(ctx, servers, fqdn, zone, hosted)
		if err != nil {
			return a, server, err
		}
		if a.ReferralZone == "" {
			return a, server, nil
		}
		if hop >= maxReferralHops {
			return a, server, fmt.Errorf("more than %d referrals below .%s for %s", maxReferralHops, tld, name)
		}
		next, err := c.addresses(ctx, a.ReferralZone, a.Nameservers, a.Glue)
		if err != nil {
			return a, server, fmt.Errorf("servers of %s: %w", a.ReferralZone, err)
		}
		servers, zone = next, a.ReferralZone
	}
}

// parentServers returns the servers to ask for delegations in tld.
func (c *Client) parentServers(ctx context.Context, tld string) ([]string, error) {
	if s := c.configured(tld); len(s) > 0 {
		return s, nil
	}
	if c.cfg.Resolver == "" {
		return nil, fmt.Errorf("no servers configured for .%s and no resolver to find them", tld)
	}
	now := c.cfg.Clock.Now()
	c.cacheMu.Lock()
	e, ok := c.servers[tld]
	c.cacheMu.Unlock()
	if ok && now.Before(e.until) {
		return e.addrs, nil
	}
	m, err := c.askResolver(ctx, dns.Fqdn(tld), dns.TypeNS)
	if err != nil {
		return nil, fmt.Errorf("NS of .%s: %w", tld, err)
	}
	hosts := nsFor(m.Answer, dns.Fqdn(tld))
	if len(hosts) == 0 {
		return nil, fmt.Errorf("NS of .%s: the resolver gave none", tld)
	}
	addrs, err := c.addresses(ctx, dns.Fqdn(tld), hosts, glue(m.Extra))
	if err != nil {
		return nil, fmt.Errorf("servers of .%s: %w", tld, err)
	}
	c.cacheMu.Lock()
	c.servers[tld] = serverCacheEntry{addrs: addrs, until: now.Add(c.cfg.ServerCacheTTL)}
	c.cacheMu.Unlock()
	return addrs, nil
}

// addresses turns the nameserver host names of zone into host:53
// addresses, from glue or the resolver, at most maxServersPerZone. These
// addresses come from answers, chosen by whoever holds the zone (or its
// nameservers' names): one that is not public (dialguard.Classify) is
// skipped unless the operator named it or allows private lookups, so DNS
// data cannot aim the client's queries at internal hosts. When refusals
// leave no server, the error wraps the *dialguard.RefusedError.
func (c *Client) addresses(ctx context.Context, zone string, hosts []string, glue map[string][]string) ([]string, error) {
	var out []string
	var lastErr, refused error
	for _, h := range hosts {
		if len(out) >= maxServersPerZone {
			break
		}
		ips := glue[h]
		if len(ips) == 0 && c.cfg.Resolver != "" {
			m, err := c.askResolver(ctx, dns.Fqdn(h), dns.TypeA)
			if err != nil {
				lastErr = err
				continue
			}
			for _, rr := range m.Answer {
				if a, ok := rr.(*dns.A); ok {
					ips = append(ips, a.A.String())
				}
			}
		}
		for _, ip := range ips {
			server := net.JoinHostPort(ip, "53")
			if err := c.guard.CheckAddress(server); err != nil {
				c.refused(zone, h, err)
				refused = err
				continue
			}
			out = append(out, server)
			break
		}
	}
	if len(out) == 0 {
		switch {
		case lastErr != nil: // a retry may find a server
			return nil, lastErr
		case refused != nil:
			return nil, fmt.Errorf("every server at a non-public address: %w", refused)
		}
		return nil, errors.New("no addresses")
	}
	return out, nil
}

// refused counts and logs a nameserver address the guard refused.
func (c *Client) refused(zone, host string, err error) {
	c.metrics.queries.WithLabelValues(targetParent, OutcomeAddressRefused).Inc()
	attrs := []any{"zone", zone, "nameserver", host, "error", err}
	c.cfg.Logger.Debug("dns evidence: nameserver address refused", attrs...)
	c.refusalLog.Do(func() {
		c.cfg.Logger.Warn("dns evidence: not querying a nameserver at a non-public address learned from a DNS answer; "+
			"further refusals this minute are only counted (domainguard_dns_queries_total{outcome=\"address_refused\"})", attrs...)
	})
}

// askParent asks servers (in turn, rounds with backoff) the non-recursive
// question "NS fqdn" until one gives a decisive answer. hostedOK: an
// answer that the name exists in the zone without a cut is decisive
// (lifecycle.HostedCounts); else it is lame.
func (c *Client) askParent(ctx context.Context, servers []string, fqdn, zone string, hostedOK bool) (ParentAnswer, string, error) {
	var lastErr error
	for round := 0; round < c.cfg.Attempts; round++ {
		if round > 0 {
			if err := sleep(ctx, c.cfg.RetryInitial<<(round-1)); err != nil {
				return ParentAnswer{}, "", err
			}
		}
		for i := range servers {
			server := servers[(i+round)%len(servers)]
			q := newQuery(fqdn, dns.TypeNS, false)
			m, err := c.exchange(ctx, server, q, targetParent)
			if err != nil {
				lastErr = fmt.Errorf("%s: %w", server, err)
				if ctx.Err() != nil {
					return ParentAnswer{}, "", lastErr
				}
				continue
			}
			a, err := InterpretParent(m, fqdn, zone)
			if err == nil && a.Hosted && !hostedOK {
				err = errHostedNotEvidence
			}
			if err != nil {
				c.metrics.outcome(targetParent, err)
				lastErr = fmt.Errorf("%s: %w", server, err)
				continue
			}
			if a.NotDelegated {
				c.metrics.queries.WithLabelValues(targetParent, OutcomeNXDomain).Inc()
			} else {
				c.metrics.queries.WithLabelValues(targetParent, OutcomeOK).Inc()
			}
			return a, server, nil
		}
	}
	return ParentAnswer{}, "", fmt.Errorf("no answer for %s from the servers of %s after %d rounds: %w", fqdn, zone, c.cfg.Attempts, lastErr)
}

// askResolver asks the recursive resolver (RD=1), with retries.
func (c *Client) askResolver(ctx context.Context, fqdn string, qtype uint16) (*dns.Msg, error) {
	if c.cfg.Resolver == "" {
		return nil, errors.New("no resolver configured")
	}
	var lastErr error
	for round := 0; round < c.cfg.Attempts; round++ {
		if round > 0 {
			if err := sleep(ctx, c.cfg.RetryInitial<<(round-1)); err != nil {
				return nil, err
			}
		}
		m, err := c.exchange(ctx, c.cfg.Resolver, newQuery(fqdn, qtype, true), targetResolver)
		if err != nil {
			lastErr = err
			if ctx.Err() != nil {
				break
			}
			continue
		}
		if _, err := InterpretResolver(m); err != nil {
			c.metrics.outcome(targetResolver, err)
			lastErr = err
			continue
		}
		c.metrics.queries.WithLabelValues(targetResolver, OutcomeOK).Inc()
		return m, nil
	}
	return nil, fmt.Errorf("resolver %s, %s %s: %w", c.cfg.Resolver, dns.TypeToString[qtype], fqdn, lastErr)
}

func newQuery(fqdn string, qtype uint16, recursive bool) *dns.Msg {
	q := new(dns.Msg)
	q.SetQuestion(fqdn, qtype)
	q.RecursionDesired = recursive
	q.SetEdns0(udpBufferSize, false)
	return q
}

// Query targets (label values).
const (
	targetParent   = "parent"
	targetResolver = "resolver"
)

// exchange sends q to server over UDP, falling back to TCP when the answer
// is truncated, after waiting on the server's rate limiter. Answers with
// another ID are counted and skipped while the timeout lasts (a spoofed or
// late answer must not end the wait for the real one). Failures are
// counted; the caller counts rcode outcomes.
func (c *Client) exchange(ctx context.Context, server string, q *dns.Msg, target string) (*dns.Msg, error) {
	if err := c.limiter(server).Wait(ctx); err != nil {
		return nil, fmt.Errorf("rate limit wait: %w", err)
	}
	wire, err := q.Pack()
	if err != nil {
		return nil, fmt.Errorf("pack query: %w", err)
	}
	qctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	m, err := c.exchangeUDP(qctx, server, q, wire)
	if reason, bad := isBad(err); bad && reason == BadTruncated {
		c.metrics.bad.WithLabelValues(BadTruncated).Inc()
		m, err = c.exchangeTCP(qctx, server, q, wire)
	}
	if err != nil {
		c.metrics.transportFailure(target, err)
		return nil, err
	}
	return m, nil
}

func (c *Client) exchangeUDP(ctx context.Context, server string, q *dns.Msg, wire []byte) (*dns.Msg, error) {
	conn, done, err := c.dial(ctx, "udp", server)
	if err != nil {
		return nil, err
	}
	defer done()
	if _, err := conn.Write(wire); err != nil {
		return nil, err
	}
	buf := make([]byte, maxAnswerBytes)
	for {
		n, err := conn.Read(buf)
		if err != nil {
			return nil, err
		}
		m, err := ParseResponse(buf[:n], q, udpBufferSize)
		if reason, bad := isBad(err); bad && reason == BadMismatchedID {
			c.metrics.bad.WithLabelValues(reason).Inc()
			continue
		}
		return m, err
	}
}

func (c *Client) exchangeTCP(ctx context.Context, server string, q *dns.Msg, wire []byte) (*dns.Msg, error) {
	conn, done, err := c.dial(ctx, "tcp", server)
	if err != nil {
		return nil, err
	}
	defer done()
	out := make([]byte, 2+len(wire))
	binary.BigEndian.PutUint16(out, uint16(len(wire)))
	copy(out[2:], wire)
	if _, err := conn.Write(out); err != nil {
		return nil, err
	}
	var l [2]byte
	if _, err := io.ReadFull(conn, l[:]); err != nil {
		return nil, err
	}
	body := make([]byte, binary.BigEndian.Uint16(l[:]))
	if _, err := io.ReadFull(conn, body); err != nil {
		return nil, badAnswer(BadTruncated, "TCP answer cut short: %v", err)
	}
	m, err := ParseResponse(body, q, maxAnswerBytes)
	if reason, bad := isBad(err); bad && reason == BadTruncated {
		return nil, badAnswer(BadTruncated, "truncated over TCP")
	}
	return m, err
}

// dial connects to server with ctx's deadline on every read and write; a
// cancelled ctx unblocks them at once. done closes the connection.
func (c *Client) dial(ctx context.Context, network, server string) (conn net.Conn, done func(), err error) {
	conn, err = c.dialContext(ctx, network, server)
	if err != nil {
		return nil, nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	return conn, func() { stop(); conn.Close() }, nil
}

func (c *Client) limiter(server string) *rate.Limiter {
	c.limMu.Lock()
	defer c.limMu.Unlock()
	l, ok := c.limiters[server]
	if !ok {
		l = rate.NewLimiter(rate.Limit(c.cfg.QueriesPerSecond), 1)
		c.limiters[server] = l
	}
	return l
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// isTimeout reports whether err is a network timeout or deadline.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}
