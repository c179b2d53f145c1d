package scheduler

import (
	"testing"
	"time"
)

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

// TestCronNext checks fire times with and without seconds, in several
// zones, and through both DST changes of Europe/Berlin in 2026 (spring
// forward on 29 March at 02:00 CET → 03:00 CEST = 01:00 UTC; fall back on
// 25 October at 03:00 CEST → 02:00 CET = 01:00 UTC).
//
// What robfig/cron v3 does by itself (raw): a daily "30 2 * * *" has no
// 02:30 on 29 March and silently fires next on 30 March (a day lost), and
// on 25 October it fires at 02:30 CEST and again at 02:30 CET (a double).
// dstSafe fires the first at 03:00 CEST, the moment the gap ends, and
// drops the second, as Vixie cron does; schedules with every hour keep
// firing every real hour.
func TestCronNext(t *testing.T) {
	tests := []struct {
		name, cron, zone string
		after            string
		want             []string // UTC
		raw              []string // what robfig/cron alone gives, when it differs
	}{
		{name: "5 fields UTC", cron: "0 2 * * *", zone: "UTC", after: "2026-11-24T12:00:00Z",
			want: []string{"2026-11-25T02:00:00Z", "2026-11-26T02:00:00Z"}},
		{name: "6 fields: seconds first", cron: "30 0 2 * * *", zone: "UTC", after: "2026-11-24T12:00:00Z",
			want: []string{"2026-11-25T02:00:30Z", "2026-11-26T02:00:30Z"}},
		{name: "every 10 seconds", cron: "*/10 * * * * *", zone: "Europe/Berlin", after: "2026-11-25T00:00:05Z",
			want: []string{"2026-11-25T00:00:10Z", "2026-11-25T00:00:20Z", "2026-11-25T00:00:30Z"}},
		{name: "descriptor", cron: "@hourly", zone: "UTC", after: "2026-11-25T00:30:00Z",
			want: []string{"2026-11-25T01:00:00Z", "2026-11-25T02:00:00Z"}},
		{name: "Berlin winter", cron: "0 2 * * *", zone: "Europe/Berlin", after: "2026-11-24T12:00:00Z",
			want: []string{"2026-11-25T01:00:00Z"}},
		{name: "Berlin summer", cron: "0 2 * * *", zone: "Europe/Berlin", after: "2026-07-01T12:00:00Z",
			want: []string{"2026-07-02T00:00:00Z"}},
		{name: "half-hour zone", cron: "15 10 * * 1-5", zone: "Asia/Kolkata", after: "2026-11-25T00:00:00Z",
			want: []string{"2026-11-25T04:45:00Z", "2026-11-26T04:45:00Z", "2026-11-27T04:45:00Z", "2026-11-30T04:45:00Z"}},
		{name: "New York weekdays with seconds", cron: "0 30 9 * * MON-FRI", zone: "America/New_York", after: "2026-03-06T00:00:00Z",
			want: []string{"2026-03-06T14:30:00Z", "2026-03-09T13:30:00Z"}}, // DST began 8 March
		{name: "spring forward: 02:30 daily", cron: "30 2 * * *", zone: "Europe/Berlin", after: "2026-03-28T11:00:00Z",
			want: []string{"2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z"},
			raw:  []string{"2026-03-30T00:30:00Z", "2026-03-31T00:30:00Z"}},
		{name: "spring forward: 02:00 daily with seconds", cron: "0 0 2 * * *", zone: "Europe/Berlin", after: "2026-03-28T11:00:00Z",
			want: []string{"2026-03-29T01:00:00Z", "2026-03-30T00:00:00Z"},
			raw:  []string{"2026-03-30T00:00:00Z", "2026-03-31T00:00:00Z"}},
		{name: "spring forward: several in the gap fire once", cron: "*/15 2 * * *", zone: "Europe/Berlin", after: "2026-03-28T11:00:00Z",
			want: []string{"2026-03-29T01:00:00Z", "2026-03-30T00:00:00Z"},
			raw:  []string{"2026-03-30T00:00:00Z", "2026-03-30T00:15:00Z"}},
		{name: "spring forward: 03:00 daily unaffected", cron: "0 3 * * *", zone: "Europe/Berlin", after: "2026-03-28T11:00:00Z",
			want: []string{"2026-03-29T01:00:00Z", "2026-03-30T01:00:00Z"}},
		{name: "spring forward: hourly every real hour", cron: "30 * * * *", zone: "Europe/Berlin", after: "2026-03-28T23:45:00Z",
			want: []string{"2026-03-29T00:30:00Z", "2026-03-29T01:30:00Z", "2026-03-29T02:30:00Z"}},
		{name: "fall back: 02:30 daily once", cron: "30 2 * * *", zone: "Europe/Berlin", after: "2026-10-24T11:00:00Z",
			want: []string{"2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"},
			raw:  []string{"2026-10-25T00:30:00Z", "2026-10-25T01:30:00Z"}},
		{name: "leap years past the zone table (golang/go#81583)", cron: "0 0 29 2 *", zone: "Europe/Berlin", after: "2040-01-01T00:00:00Z",
			want: []string{"2040-02-28T23:00:00Z", "2044-02-28T23:00:00Z", "2048-02-28T23:00:00Z"}},
		{name: "new year's eve of a leap year past the zone table", cron: "0 12 31 12 *", zone: "Europe/Berlin", after: "2040-12-31T10:00:00Z",
			want: []string{"2040-12-31T11:00:00Z", "2041-12-31T11:00:00Z"}},
		{name: "fall back: hourly every real hour", cron: "0 * * * *", zone: "Europe/Berlin", after: "2026-10-24T23:30:00Z",
			want: []string{"2026-10-25T00:00:00Z", "2026-10-25T01:00:00Z", "2026-10-25T02:00:00Z"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Config{Name: "x", Cron: tt.cron, Timezone: tt.zone, Template: "t"}
			cc, err := c.compile()
			if err != nil {
				t.Fatal(err)
			}
			check := func(what string, next func(time.Time) time.Time, want []string) {
				at := utc(tt.after)
				for i, w := range want {
					at = next(at)
					if got := fireKey(at); got != w {
						t.Errorf("%s fire %d: %s, want %s", what, i+1, got, w)
					}
				}
			}
			check("dpe", cc.sched.Next, tt.want)
			if tt.raw != nil {
				check("robfig", cc.sched.(*dstSafe).spec.Next, tt.raw)
			}
		})
	}
}
