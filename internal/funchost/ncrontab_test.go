package funchost_test

import (
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // the DST cases need America/New_York wherever the tests run

	"github.com/handoff-dev/handoff/internal/funchost"
)

func TestParseNCRONTAB(t *testing.T) {
	for _, expr := range []string{
		"*/10 * * * * *", "0 */5 * * * *", "0 0 9 * * 1-5", "0 30 * * * *", "0 0 0 29 2 *",
		"0 0 */2 * * *", "5,10-12,50-59/4 * * * * *", "15/20 * * * * *", "59 59 23 31 12 6",
		"0 0 0 1 1 0", "0 0 0 * * 0,6", "0  */5\t*  * * *", " 0 0 9 * * 1-5 ", "*/100 * * * * *",
	} {
		s, err := funchost.ParseNCRONTAB(expr)
		if err != nil {
			t.Errorf("ParseNCRONTAB(%q): %v", expr, err)
			continue
		}
		if want := strings.Join(strings.Fields(expr), " "); s.String() != want || s.IsZero() {
			t.Errorf("ParseNCRONTAB(%q).String() = %q, want %q", expr, s.String(), want)
		}
	}
	if !(funchost.Schedule{}).IsZero() || !(funchost.Schedule{}).Next(time.Now()).IsZero() {
		t.Error("the zero Schedule fires")
	}

	for _, tc := range []struct{ expr, want string }{
		{"* * * * *", "NCRONTAB needs six fields: second minute hour day month day-of-week; it has 5"},
		{"0 */5 * * *", `"0 0 */5 * * *" fires at second 0`},
		{"", "needs six fields"},
		{"* * * * * * *", "it has 7"},
		{"00:05:00", "TimeSpan"},
		{"%AUDIT_SWEEP_SCHEDULE%", "resolve the %SETTING% reference first"},
		{"60 * * * * *", `second field "60": 60 is out of range 0-59`},
		{"* 60 * * * *", "minute field"},
		{"* * 24 * * *", "hour field"},
		{"* * * 0 * *", `day field "0": 0 is out of range 1-31`},
		{"* * * 32 * *", "day field"},
		{"* * * * 0 *", "month field"},
		{"* * * * 13 *", "month field"},
		{"* * * * * 7", `day-of-week field "7": 7 is out of range 0-6`},
		{"*/0 * * * * *", "a step of 0"},
		{"5-1 * * * * *", "runs backwards"},
		{"1,,2 * * * * *", "an empty list element"},
		{"1, * * * * *", "an empty list element"},
		{"a * * * * *", "is not a number"},
		{"* * * * JAN *", "is not a number"},
		{"* * * * * MON", "is not a number"},
		{"-1 * * * * *", "a number is missing"},
		{"+1 * * * * *", "is not a number"},
		{"1-2-3 * * * * *", "is not a number"},
		{"*/ * * * * *", "a number is missing"},
		{"/5 * * * * *", "a number is missing"},
		{"1- * * * * *", "a number is missing"},
		{"*/5/2 * * * * *", "is not a number"},
		{"*-5 * * * * *", "is not a number"},
		{"0 0 9 ? * MON-FRI", "is not a number"},
		{"0 0 9 L * *", "is not a number"},
		{"99999999999999999999 * * * * *", "is not a number"},
	} {
		_, err := funchost.ParseNCRONTAB(tc.expr)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseNCRONTAB(%q) = %v, want an error containing %q", tc.expr, err, tc.want)
		}
	}
}

func TestScheduleNext(t *testing.T) {
	utc := func(s string) time.Time {
		t.Helper()
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, tc := range []struct{ expr, after, want string }{
		{"*/10 * * * * *", "2025-03-14T09:00:00Z", "2025-03-14T09:00:10Z"}, // strictly after
		{"*/10 * * * * *", "2025-03-14T09:00:05.5Z", "2025-03-14T09:00:10Z"},
		{"*/10 * * * * *", "2025-03-14T09:00:09.999Z", "2025-03-14T09:00:10Z"},
		{"*/10 * * * * *", "2025-03-14T09:00:50Z", "2025-03-14T09:01:00Z"},
		{"*/10 * * * * *", "2025-12-31T23:59:55Z", "2026-01-01T00:00:00Z"},
		{"*/1 * * * * *", "2025-03-14T09:00:00.2Z", "2025-03-14T09:00:01Z"},
		{"0 */5 * * * *", "2025-03-14T09:00:00Z", "2025-03-14T09:05:00Z"},
		{"0 */5 * * * *", "2025-03-14T09:03:17Z", "2025-03-14T09:05:00Z"},
		{"0 */5 * * * *", "2025-03-14T09:55:00Z", "2025-03-14T10:00:00Z"},
		{"0 */5 * * * *", "2025-03-14T23:59:59Z", "2025-03-15T00:00:00Z"},
		// 2025-03-14 is a Friday.
		{"0 0 9 * * 1-5", "2025-03-14T08:59:59Z", "2025-03-14T09:00:00Z"},
		{"0 0 9 * * 1-5", "2025-03-14T09:00:00Z", "2025-03-17T09:00:00Z"},
		{"0 0 9 * * 1-5", "2025-03-15T10:00:00Z", "2025-03-17T09:00:00Z"},
		{"0 0 9 * * 1-5", "2025-03-17T09:00:01Z", "2025-03-18T09:00:00Z"},
		{"0 30 * * * *", "2025-03-14T09:29:59.999Z", "2025-03-14T09:30:00Z"},
		{"0 30 * * * *", "2025-03-14T09:30:00Z", "2025-03-14T10:30:00Z"},
		{"0 30 * * * *", "2025-03-14T23:45:00Z", "2025-03-15T00:30:00Z"},
		// Month and day edges.
		{"0 0 0 31 * *", "2025-01-31T00:00:00Z", "2025-03-31T00:00:00Z"}, // February has no 31st
		{"0 0 0 31 * *", "2025-03-31T00:00:00Z", "2025-05-31T00:00:00Z"}, // nor April
		{"0 0 0 1 * *", "2025-12-15T00:00:00Z", "2026-01-01T00:00:00Z"},
		{"0 0 12 * 2 *", "2025-02-28T12:00:00Z", "2026-02-01T12:00:00Z"},
		{"0 0 0 30 1,3 *", "2025-01-30T00:00:00Z", "2025-03-30T00:00:00Z"},
		{"59 59 23 31 12 *", "2025-06-01T00:00:00Z", "2025-12-31T23:59:59Z"},
		// Leap days.
		{"0 0 0 29 2 *", "2025-03-01T00:00:00Z", "2028-02-29T00:00:00Z"},
		{"0 0 0 29 2 *", "2028-02-29T00:00:00Z", "2032-02-29T00:00:00Z"},
		{"0 0 0 29 2 *", "2024-02-28T23:59:59Z", "2024-02-29T00:00:00Z"},
		{"0 0 0 29 2 *", "2096-03-01T00:00:00Z", "2104-02-29T00:00:00Z"}, // 2100 is not a leap year
		// Day and day-of-week must both match (NCrontab): Friday the 13th,
		// and 29 February on a Monday (28 years apart).
		{"0 0 0 13 * 5", "2025-01-01T00:00:00Z", "2025-06-13T00:00:00Z"},
		{"0 0 0 29 2 1", "2025-01-01T00:00:00Z", "2044-02-29T00:00:00Z"},
		{"0 0 0 29 2 1", "2044-02-29T00:00:00Z", "2072-02-29T00:00:00Z"},
		// Lists and steps.
		{"5,10-12,50-59/4 * * * * *", "2025-03-14T09:00:12Z", "2025-03-14T09:00:50Z"},
		{"5,10-12,50-59/4 * * * * *", "2025-03-14T09:00:54Z", "2025-03-14T09:00:58Z"},
		{"5,10-12,50-59/4 * * * * *", "2025-03-14T09:00:58Z", "2025-03-14T09:01:05Z"},
		{"15/20 * * * * *", "2025-03-14T09:00:35Z", "2025-03-14T09:00:55Z"},
		{"0 0 */6 * * *", "2025-03-14T18:00:00Z", "2025-03-15T00:00:00Z"},
		{"0 0 0 * * 0,6", "2025-03-14T12:00:00Z", "2025-03-15T00:00:00Z"},
		{"0 0 0 * * 0", "2025-03-15T12:00:00Z", "2025-03-16T00:00:00Z"},
		// Never.
		{"0 0 0 30 2 *", "2025-01-01T00:00:00Z", ""},
		{"0 0 0 31 4,6,9,11 *", "2025-01-01T00:00:00Z", ""},
	} {
		s, err := funchost.ParseNCRONTAB(tc.expr)
		if err != nil {
			t.Fatalf("ParseNCRONTAB(%q): %v", tc.expr, err)
		}
		got := s.Next(utc(tc.after))
		if tc.want == "" {
			if !got.IsZero() {
				t.Errorf("%q after %s = %s, want never (zero)", tc.expr, tc.after, got)
			}
			continue
		}
		if want := utc(tc.want); !got.Equal(want) || got.Location() != time.UTC {
			t.Errorf("%q after %s = %s, want %s", tc.expr, tc.after, got, want)
		}
	}
}

func TestScheduleNextSequence(t *testing.T) {
	s, _ := funchost.ParseNCRONTAB("0 */5 * * * *")
	at := time.Date(2025, 3, 14, 9, 58, 0, 0, time.UTC)
	var got []string
	for range 4 {
		at = s.Next(at)
		got = append(got, at.Format("15:04:05"))
	}
	if strings.Join(got, " ") != "10:00:00 10:05:00 10:10:00 10:15:00" {
		t.Errorf("sequence %v", got)
	}
}

func TestScheduleNextLocations(t *testing.T) {
	t.Run("fixed offset", func(t *testing.T) {
		loc := time.FixedZone("UTC+2", 2*3600)
		s, _ := funchost.ParseNCRONTAB("0 0 9 * * *")
		after := time.Date(2025, 3, 14, 8, 0, 0, 0, time.UTC).In(loc) // 10:00 there
		got := s.Next(after)
		if want := time.Date(2025, 3, 15, 9, 0, 0, 0, loc); !got.Equal(want) || got.Location() != loc {
			t.Errorf("got %s, want %s", got, want)
		}
	})
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	t.Run("a skipped wall-clock time is skipped", func(t *testing.T) {
		// 2025-03-09: 02:00 EST becomes 03:00 EDT, so 02:30 does not exist.
		s, _ := funchost.ParseNCRONTAB("0 30 2 * * *")
		got := s.Next(time.Date(2025, 3, 8, 3, 0, 0, 0, ny))
		if want := time.Date(2025, 3, 10, 2, 30, 0, 0, ny); !got.Equal(want) {
			t.Errorf("got %s, want %s", got, want)
		}
	})
	t.Run("a repeated wall-clock time fires once", func(t *testing.T) {
		// 2025-11-02: 02:00 EDT becomes 01:00 EST, so 01:30 happens twice.
		s, _ := funchost.ParseNCRONTAB("0 30 1 * * *")
		end := time.Date(2025, 11, 3, 12, 0, 0, 0, ny)
		var fired []time.Time
		for at := s.Next(time.Date(2025, 11, 1, 0, 0, 0, 0, ny)); at.Before(end); at = s.Next(at) {
			fired = append(fired, at)
		}
		if len(fired) != 3 || fired[1].Day() != 2 || fired[1].Hour() != 1 || fired[1].Minute() != 30 {
			t.Errorf("fired at %v, want once each on 1, 2 and 3 November", fired)
		}
	})
	t.Run("every minute through the repeated hour, always forward", func(t *testing.T) {
		s, _ := funchost.ParseNCRONTAB("0 * * * * *")
		at := time.Date(2025, 11, 2, 0, 30, 0, 0, ny)
		end := at.Add(3 * time.Hour)
		for n := 0; at.Before(end); n++ {
			next := s.Next(at)
			if !next.After(at) || next.Sub(at) > time.Hour+time.Minute || n > 1000 {
				t.Fatalf("after %s: %s", at, next)
			}
			at = next
		}
	})
}

func BenchmarkScheduleNext(b *testing.B) {
	every, _ := funchost.ParseNCRONTAB("0 */5 * * * *")
	never, _ := funchost.ParseNCRONTAB("0 0 0 30 2 *")
	at := time.Date(2025, 3, 14, 9, 0, 0, 0, time.UTC)
	b.Run("every 5 minutes", func(b *testing.B) {
		for b.Loop() {
			every.Next(at)
		}
	})
	b.Run("never", func(b *testing.B) {
		for b.Loop() {
			never.Next(at)
		}
	})
}
