package web_test

import (
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/gqlauth/gqlauth/internal/web"
)

func TestClientIP(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}
	for _, tc := range []struct {
		name, peer string
		xff        []string
		want       string
	}{
		{"UntrustedPeerIgnoresHeader", "192.0.2.9:1234", []string{"203.0.113.7"}, "192.0.2.9"},
		{"TrustedPeerNoHeader", "10.0.0.1:1234", nil, "10.0.0.1"},
		{"TrustedPeer", "10.0.0.1:1234", []string{"203.0.113.7"}, "203.0.113.7"},
		{"RightmostUntrusted", "10.0.0.1:1234", []string{"198.51.100.1, 203.0.113.7, 10.0.0.2"}, "203.0.113.7"},
		{"SeveralHeaders", "10.0.0.1:1234", []string{"198.51.100.1", "203.0.113.7, 10.0.0.2"}, "203.0.113.7"},
		{"WithPort", "10.0.0.1:1234", []string{"203.0.113.7:5678"}, "203.0.113.7"},
		{"IPv6WithBracketsAndPort", "10.0.0.1:1234", []string{"[2001:db8::1]:443"}, "2001:db8::1"},
		{"IPv6WithBrackets", "10.0.0.1:1234", []string{"[2001:db8::1]"}, "2001:db8::1"},
		{"IPv6Bare", "[fd00::5]:1234", []string{"2001:db8::1"}, "2001:db8::1"},
		{"EmptyEntriesSkipped", "10.0.0.1:1234", []string{"203.0.113.7, ", ""}, "203.0.113.7"},
		{"MappedIPv4", "10.0.0.1:1234", []string{"::ffff:203.0.113.7"}, "203.0.113.7"},
		{"GarbageStopsAtLastGoodHop", "10.0.0.1:1234", []string{"203.0.113.7, nonsense, 10.0.0.3"}, "10.0.0.3"},
		{"AllTrusted", "10.0.0.1:1234", []string{"10.0.0.9"}, "10.0.0.9"},
		{"ZonedPeer", "[fd00::1%eth0]:1234", []string{"203.0.113.7"}, "203.0.113.7"},
		{"MappedPeer", "[::ffff:10.0.0.1]:1234", []string{"203.0.113.7"}, "203.0.113.7"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest("POST", "/graphql", nil)
			req.RemoteAddr = tc.peer
			for _, v := range tc.xff {
				req.Header.Add("X-Forwarded-For", v)
			}
			if got := web.ClientIP(req, trusted); got != tc.want {
				t.Fatalf("ClientIP = %q, want %q", got, tc.want)
			}
		})
	}
}
