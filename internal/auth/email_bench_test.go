package auth_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/gqlauth/gqlauth/internal/auth"
	"github.com/gqlauth/gqlauth/internal/authtest"
)

// BenchmarkResetRequestKnownVsUnknown times requestPasswordReset for a
// registered and an unknown address, interleaved (each address once: the
// limit allows one a minute), on the real embedded database, and reports
// the medians and their ratio: the two must take about the same time.
//
//	go test -run '^$' -bench ResetRequestKnownVsUnknown -benchtime 400x ./internal/auth
func BenchmarkResetRequestKnownVsUnknown(b *testing.B) {
	f := authtest.New(b, authtest.Options{})
	ctx := context.Background()
	n := b.N
	for i := range n {
		in := auth.RegisterInput{Name: "K", Email: fmt.Sprintf("known-%d@example.com", i), Password: authtest.Password, PasswordConfirm: authtest.Password}
		if _, err := f.Service.Register(ctx, in); err != nil {
			b.Fatal(err)
		}
	}
	known, unknown := make([]time.Duration, 0, n), make([]time.Duration, 0, n)
	b.ResetTimer()
	for i := range n {
		order := []bool{true, false} // known first, then unknown; swapped every other time
		if i%2 == 1 {
			order = []bool{false, true}
		}
		for _, isKnown := range order {
			addr, into := fmt.Sprintf("unknown-%d@example.com", i), &unknown
			if isKnown {
				addr, into = fmt.Sprintf("known-%d@example.com", i), &known
			}
			start := time.Now()
			if err := f.Service.RequestPasswordReset(ctx, addr); err != nil {
				b.Fatal(err)
			}
			*into = append(*into, time.Since(start))
		}
	}
	b.StopTimer()
	median := func(d []time.Duration) time.Duration { slices.Sort(d); return d[len(d)/2] }
	mk, mu := median(known), median(unknown)
	b.ReportMetric(float64(mk.Microseconds()), "known-µs")
	b.ReportMetric(float64(mu.Microseconds()), "unknown-µs")
	b.ReportMetric(float64(mk)/float64(mu), "known/unknown")
}
