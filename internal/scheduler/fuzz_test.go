package scheduler

import (
	"testing"
	"time"
)

// FuzzCron: any cron text is refused or gives a schedule whose fire times
// strictly increase, in every zone we test with.
func FuzzCron(f *testing.F) {
	for _, s := range []string{"0 2 * * *", "*/10 * * * * *", "@hourly", "30 2 * * *", "0 0 29 2 *", "1-5/2 3,4 * JAN-MAR MON", "? * * * *", "*/0 * * * *"} {
		f.Add(s, "Europe/Berlin")
		f.Add(s, "America/Sao_Paulo")
	}
	f.Fuzz(func(t *testing.T, spec, zone string) {
		loc, err := loadZone(zone)
		if err != nil {
			return
		}
		s, err := parseCron(spec, loc)
		if err != nil {
			return
		}
		at := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
		for range 50 {
			n := s.Next(at)
			if n.IsZero() {
				return
			}
			if !n.After(at) {
				t.Fatalf("%q in %s: Next(%s) = %s", spec, zone, at, n)
			}
			at = n
		}
	})
}
