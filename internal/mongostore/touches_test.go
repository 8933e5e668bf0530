package mongostore

import (
	"testing"
	"time"
)

// TestTouchAfterAWriteIsWrittenAMinuteLater: a use that comes soon after a
// session's touch was written, with no use after it, is written a minute
// after that write (it used to wait for a later use, for ever, holding its
// place among the remembered touches until they were full and every touch
// was dropped).
func TestTouchAfterAWriteIsWrittenAMinuteLater(t *testing.T) {
	var tt touches
	t0 := time.Now()
	tt.note("s", t0)
	if got := tt.due(t0, false); !got["s"].Equal(t0) {
		t.Fatalf("first use not written at once: %v", got)
	}
	tt.note("s", t0.Add(3*time.Second))
	if got := tt.due(t0.Add(4*time.Second), false); len(got) != 0 {
		t.Fatalf("written again within the minute: %v", got)
	}
	got := tt.due(t0.Add(61*time.Second), false)
	if !got["s"].Equal(t0.Add(3 * time.Second)) {
		t.Fatalf("the second use was not written a minute after the first write: %v", got)
	}
	tt.due(t0.Add(200*time.Second), false)
	if len(tt.pending) != 0 || len(tt.written) != 0 {
		t.Fatalf("remembered after they mattered: pending %d, written %d", len(tt.pending), len(tt.written))
	}
}
