package funchost

import (
	"errors"
	"fmt"
	"math/bits"
	"strconv"
	"strings"
	"time"
)

// Schedule is a parsed six-field NCRONTAB expression, the schedule of a
// timerTrigger function:
//
//	second minute hour day month day-of-week
//	 0-59   0-59  0-23 1-31  1-12    0-6 (Sunday is 0)
//
// The zero Schedule never fires.
type Schedule struct {
	expr   string
	fields [6]uint64 // one bit per allowed value, in field order
}

// The fields of a Schedule, in expression order.
const (
	fSecond = iota
	fMinute
	fHour
	fDay
	fMonth
	fDayOfWeek
)

var cronFields = [6]struct {
	name     string
	min, max int
}{
	{"second", 0, 59},
	{"minute", 0, 59},
	{"hour", 0, 23},
	{"day", 1, 31},
	{"month", 1, 12},
	{"day-of-week", 0, 6},
}

// MaxScheduleSearch bounds [Schedule.Next]: an expression that does not
// fire within this many years of the base time never fires (e.g. "0 0 0 30
// 2 *"). It is 50 because the rarest satisfiable expressions repeat within
// 40 years (29 February on a given weekday, across a year like 2100 that
// is not a leap year).
const MaxScheduleSearch = 50 // years

// Why not github.com/robfig/cron/v3 (with cron.Second): its semantics
// differ from NCrontab's, the parser the host's timer trigger uses, where it
// matters for a schedule:
//
//   - day and day-of-week both restricted: robfig fires when EITHER matches
//     (Vixie cron: dayMatches ORs them unless one is "*"); NCrontab when
//     BOTH do ("0 0 0 13 * 5" is Friday the 13th only, tested);
//   - robfig gives up after 5 years (Next returns zero), NCrontab and this
//     parser find rare occurrences (29 February on a Monday) further out;
//   - robfig accepts what the host refuses: descriptors (@daily, @every 5m)
//     and "?".
//
// So the hand-written parser stays.

// ParseNCRONTAB parses a six-field NCRONTAB expression, as the Functions
// host's timer trigger takes it (NCrontab with seconds): fields separated
// by spaces, each a comma-separated list of elements:
//
//	element  matches
//	*        every value
//	n        one value
//	a-b      a range, inclusive (a <= b)
//	*/s      every s-th value from the field's minimum
//	a-b/s    every s-th value from a to b
//	a/s      every s-th value from a to the field's maximum
//
// Values are decimal numbers (month and day names are not accepted). A
// five-field cron expression is refused: the Functions host wants seconds.
// Resolve an app-setting reference (%NAME%) before parsing.
func ParseNCRONTAB(expr string) (Schedule, error) {
	parts := strings.Fields(expr)
	if len(parts) != 6 {
		msg := fmt.Sprintf("funcapp: NCRONTAB %q: NCRONTAB needs six fields: second minute hour day month day-of-week; it has %d", expr, len(parts))
		switch {
		case len(parts) == 5:
			msg += fmt.Sprintf(" (a five-field cron expression lacks the seconds: \"0 %s\" fires at second 0)", strings.Join(parts, " "))
		case len(parts) == 1 && strings.Count(expr, ":") == 2:
			msg += " (TimeSpan schedules such as 00:05:00 are not supported: use NCRONTAB)"
		case strings.Contains(expr, "%"):
			msg += " (resolve the %SETTING% reference first)"
		}
		return Schedule{}, errors.New(msg)
	}
	s := Schedule{expr: strings.Join(parts, " ")}
	for i, p := range parts {
		set, err := parseCronField(p, cronFields[i].min, cronFields[i].max)
		if err != nil {
			return Schedule{}, fmt.Errorf("funcapp: NCRONTAB %q: %s field %q: %w", expr, cronFields[i].name, p, err)
		}
		s.fields[i] = set
	}
	return s, nil
}

func parseCronField(field string, min, max int) (uint64, error) {
	var set uint64
	for _, elem := range strings.Split(field, ",") {
		if elem == "" {
			return 0, errors.New("an empty list element")
		}
		rng, stepStr, hasStep := strings.Cut(elem, "/")
		step := 1
		if hasStep {
			n, err := cronNumber(stepStr)
			if err != nil {
				return 0, fmt.Errorf("step %q: %w", stepStr, err)
			}
			if n == 0 {
				return 0, errors.New("a step of 0")
			}
			step = n
		}
		var lo, hi int
		switch a, b, isRange := strings.Cut(rng, "-"); {
		case rng == "*":
			lo, hi = min, max
		case isRange:
			var err error
			if lo, err = cronValue(a, min, max); err != nil {
				return 0, err
			}
			if hi, err = cronValue(b, min, max); err != nil {
				return 0, err
			}
			if lo > hi {
				return 0, fmt.Errorf("the range %d-%d runs backwards", lo, hi)
			}
		default:
			v, err := cronValue(rng, min, max)
			if err != nil {
				return 0, err
			}
			lo, hi = v, v
			if hasStep { // a/s: from a to the maximum, as NCrontab reads it
				hi = max
			}
		}
		for v := lo; v <= hi; v += step {
			set |= 1 << v
		}
	}
	return set, nil
}

// cronNumber parses a decimal number of at most three digits, nothing else
// (no sign, no spaces).
func cronNumber(s string) (int, error) {
	if s == "" {
		return 0, errors.New("a number is missing")
	}
	if len(s) > 3 || strings.Trim(s, "0123456789") != "" {
		return 0, fmt.Errorf("%q is not a number (names and other syntax are not accepted)", s)
	}
	return strconv.Atoi(s)
}

func cronValue(s string, min, max int) (int, error) {
	v, err := cronNumber(s)
	if err != nil {
		return 0, err
	}
	if v < min || v > max {
		return 0, fmt.Errorf("%d is out of range %d-%d", v, min, max)
	}
	return v, nil
}

// String is the expression as parsed (fields separated by one space).
func (s Schedule) String() string { return s.expr }

// IsZero reports whether s is the zero Schedule, which never fires.
func (s Schedule) IsZero() bool { return s.fields[fSecond] == 0 }

// Next is the first time the schedule fires strictly after after, at a
// whole second, in after's location; the zero time if it does not fire
// within [MaxScheduleSearch] years.
//
// Day and day-of-week must BOTH match, as in NCrontab, the library the
// Functions host uses: "0 0 0 13 * 5" fires on Friday the 13th only. (This
// differs from Vixie cron, where a time matches if either of the two
// matches when both are restricted.)
//
// The fields are matched against the wall clock of after's location. A
// wall-clock time that does not exist there (skipped by a daylight-saving
// change) is skipped; one that occurs twice fires once. The Functions host
// evaluates schedules in UTC unless WEBSITE_TIME_ZONE (or TZ) says
// otherwise: pass a UTC time to get its behaviour.
func (s Schedule) Next(after time.Time) time.Time {
	if s.IsZero() {
		return time.Time{}
	}
	loc := after.Location()
	// Search the wall clock as a civil time (UTC has no DST), from the
	// second after after's.
	y, mo, d := after.Date()
	h, mi, sec := after.Clock()
	c := time.Date(y, mo, d, h, mi, sec+1, 0, time.UTC)
	limit := c.AddDate(MaxScheduleSearch, 0, 0)
	for c.Before(limit) {
		y, mo, d = c.Date()
		h, mi, sec = c.Clock()
		if !has(s.fields[fMonth], int(mo)) {
			c = time.Date(y, mo+1, 1, 0, 0, 0, 0, time.UTC)
			continue
		}
		if !has(s.fields[fDay], d) || !has(s.fields[fDayOfWeek], int(c.Weekday())) {
			c = time.Date(y, mo, d+1, 0, 0, 0, 0, time.UTC)
			continue
		}
		nh, ok := nextIn(s.fields[fHour], h)
		if !ok {
			c = time.Date(y, mo, d+1, 0, 0, 0, 0, time.UTC)
			continue
		}
		if nh != h {
			c = time.Date(y, mo, d, nh, 0, 0, 0, time.UTC)
			continue
		}
		nmi, ok := nextIn(s.fields[fMinute], mi)
		if !ok {
			c = time.Date(y, mo, d, h+1, 0, 0, 0, time.UTC)
			continue
		}
		if nmi != mi {
			c = time.Date(y, mo, d, h, nmi, 0, 0, time.UTC)
			continue
		}
		nsec, ok := nextIn(s.fields[fSecond], sec)
		if !ok {
			c = time.Date(y, mo, d, h, mi+1, 0, 0, time.UTC)
			continue
		}
		if nsec != sec {
			c = time.Date(y, mo, d, h, mi, nsec, 0, time.UTC)
			continue
		}
		t := time.Date(y, mo, d, h, mi, sec, 0, loc)
		if t.After(after) && sameWallClock(t, c) {
			return t
		}
		c = c.Add(time.Second)
	}
	return time.Time{}
}

func has(set uint64, v int) bool { return set&(1<<v) != 0 }

// nextIn is the least value of set at or above from.
func nextIn(set uint64, from int) (int, bool) {
	m := set >> from << from
	if m == 0 {
		return 0, false
	}
	return bits.TrailingZeros64(m), true
}

func sameWallClock(t, civil time.Time) bool {
	y, mo, d := t.Date()
	h, mi, s := t.Clock()
	cy, cmo, cd := civil.Date()
	ch, cmi, cs := civil.Clock()
	return y == cy && mo == cmo && d == cd && h == ch && mi == cmi && s == cs
}
