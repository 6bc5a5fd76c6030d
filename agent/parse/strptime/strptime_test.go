package strptime

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var now = time.Date(2026, 3, 15, 12, 0, 0, 0, time.UTC)

func TestParse(t *testing.T) {
	cst := time.FixedZone("GMT+08:00", 8*3600)
	cases := []struct {
		format, in string
		loc        *time.Location
		want       time.Time
	}{
		{"%Y-%m-%d %H:%M:%S", "2024-01-02 03:04:05", time.UTC, time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)},
		{"%Y-%m-%d %H:%M:%S", "2024-01-02 03:04:05", cst, time.Date(2024, 1, 2, 3, 4, 5, 0, cst)},
		{"%Y-%m-%d %H:%M:%S", "2024-01-02 03:04:05,123 trailing", time.UTC, time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)},
		{"%Y-%m-%d %H:%M:%S.%f", "2024-01-02 03:04:05.123", time.UTC, time.Date(2024, 1, 2, 3, 4, 5, 123000000, time.UTC)},
		{"%Y-%m-%d %H:%M:%S.%f", "2024-01-02 03:04:05.123456789123", time.UTC, time.Date(2024, 1, 2, 3, 4, 5, 123456789, time.UTC)},
		{"%d/%b/%Y:%H:%M:%S %z", "10/Oct/2000:13:55:36 -0700", cst, time.Date(2000, 10, 10, 20, 55, 36, 0, time.UTC)},
		{"%d/%b/%Y:%H:%M:%S %z", "10/oct/2000:13:55:36 +05:30", time.UTC, time.Date(2000, 10, 10, 8, 25, 36, 0, time.UTC)},
		{"%Y-%m-%dT%H:%M:%S%z", "2024-01-02T03:04:05Z", cst, time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)},
		{"%b %e %H:%M:%S", "Mar  5 01:02:03", time.UTC, time.Date(2026, 3, 5, 1, 2, 3, 0, time.UTC)},
		{"%a, %d %B %Y %T %Z", "Tue, 02 January 2024 03:04:05 GMT", cst, time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)},
		{"%a %b %d %T %Z %Y", "Tue Jan 02 03:04:05 CST 2024", cst, time.Date(2024, 1, 2, 3, 4, 5, 0, cst)},
		{"%s", "1700000000", cst, time.Unix(1700000000, 0)},
		{"%s.%f", "1700000000.5", cst, time.Unix(1700000000, 500000000)},
		{"%F %T", "2024-02-29 23:59:60", time.UTC, time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)},
		{"%D %I:%M %p", "01/02/24 12:30 AM", time.UTC, time.Date(2024, 1, 2, 0, 30, 0, 0, time.UTC)},
		{"%D %I:%M %p", "01/02/99 01:30 pm", time.UTC, time.Date(1999, 1, 2, 13, 30, 0, 0, time.UTC)},
		{"%Y %j", "2024 060", time.UTC, time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC)},
		{"%H:%M:%S", "10:00:00", time.UTC, time.Date(2026, 3, 15, 10, 0, 0, 0, time.UTC)},
		{"[%Y-%m-%d %H:%M:%S] 100%%", "[2024-01-02 03:04:05] 100%", time.UTC, time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)},
		{"%Y%m%d%H%M%S", "20240102030405", time.UTC, time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)},
		{"%Y-%m-%d  %H", "2024-01-02\t 7", time.UTC, time.Date(2024, 1, 2, 7, 0, 0, 0, time.UTC)},
	}
	for _, tc := range cases {
		l, err := Compile(tc.format)
		require.NoError(t, err, tc.format)
		sec, nsec, ok := l.Parse(tc.in, tc.loc, now)
		require.True(t, ok, "%s on %q", tc.format, tc.in)
		require.Equal(t, tc.want.UTC(), time.Unix(sec, int64(nsec)).UTC(), "%s on %q", tc.format, tc.in)
	}
}

func TestParseRejects(t *testing.T) {
	cases := []struct{ format, in string }{
		{"%Y-%m-%d", "2024/01/02"},
		{"%Y-%m-%d", "2024-13-02"},
		{"%Y-%m-%d", "2024-00-02"},
		{"%Y-%m-%d", "2024-01-32"},
		{"%H:%M", "24:00"},
		{"%H:%M", "10:60"},
		{"%b", "Foo"},
		{"%z", "+2500"},
		{"%z", "0800"},
		{"%s", "x"},
		{"%Y.%f", "2024."},
		{"%Y-%m-%d", ""},
		{"%p", "xm"},
		{"abc%Y", "ab"},
	}
	for _, tc := range cases {
		l, err := Compile(tc.format)
		require.NoError(t, err)
		_, _, ok := l.Parse(tc.in, time.UTC, now)
		require.False(t, ok, "%s should reject %q", tc.format, tc.in)
	}
}

func TestCompileErrors(t *testing.T) {
	for _, f := range []string{"", "%", "%Y-%Q", "%Y %"} {
		_, err := Compile(f)
		require.Error(t, err, f)
	}
	_, err := Compile("%Y-%Q")
	require.ErrorContains(t, err, "%Q")
}

func TestParseTimezone(t *testing.T) {
	for in, off := range map[string]int{
		"GMT+08:00": 8 * 3600, "GMT-03:30": -(3*3600 + 1800), "UTC+8": 8 * 3600, "GMT": 0, "+0530": 5*3600 + 1800, "GMT+00:00": 0,
	} {
		loc, err := ParseTimezone(in)
		require.NoError(t, err, in)
		_, got := time.Date(2024, 1, 1, 0, 0, 0, 0, loc).Zone()
		require.Equal(t, off, got, in)
	}
	for _, in := range []string{"Asia/Shanghai", "GMT+8:00x", "GMT+25:00", "8"} {
		_, err := ParseTimezone(in)
		require.Error(t, err, in)
	}
}

func TestParseDoesNotAllocate(t *testing.T) {
	l, err := Compile("%d/%b/%Y:%H:%M:%S %z")
	require.NoError(t, err)
	loc := time.FixedZone("x", 3600)
	allocs := testing.AllocsPerRun(100, func() {
		l.Parse("10/Oct/2000:13:55:36 -0700", loc, now)
	})
	require.Zero(t, allocs)
}

// FuzzParse checks that a time formatted with a format parses back to the
// same instant, and that nothing panics on arbitrary input.
func FuzzParse(f *testing.F) {
	f.Add(int64(1700000000), int32(123456789), "10/Oct/2000:13:55:36 -0700")
	f.Add(int64(0), int32(0), "")
	f.Add(int64(-86400*365*30), int32(1), "\xff%")
	pairs := []struct{ strf, goLayout string }{
		{"%Y-%m-%d %H:%M:%S.%f", "2006-01-02 15:04:05.000000000"},
		{"%d/%b/%Y:%H:%M:%S %z", "02/Jan/2006:15:04:05 -0700"},
		{"%a %b %e %H:%M:%S %Y", "Mon Jan _2 15:04:05 2006"},
		{"%Y%m%d %I:%M:%S %p", "20060102 03:04:05 PM"},
	}
	loc := time.FixedZone("t", -5*3600)
	f.Fuzz(func(t *testing.T, sec int64, nsec int32, junk string) {
		sec %= 1 << 35
		if sec < 0 {
			sec = -sec
		}
		if nsec < 0 {
			nsec = -nsec
		}
		nsec %= 1e9
		tm := time.Unix(sec, int64(nsec)).In(loc)
		for _, p := range pairs {
			l, err := Compile(p.strf)
			if err != nil {
				t.Fatal(err)
			}
			s := tm.Format(p.goLayout)
			gs, gn, ok := l.Parse(s, loc, now)
			if !ok {
				t.Fatalf("%s did not parse %q", p.strf, s)
			}
			wantN := int32(0)
			if p.strf == pairs[0].strf {
				wantN = nsec
			}
			if gs != sec || gn != wantN {
				t.Fatalf("%s on %q: got %d.%09d want %d.%09d", p.strf, s, gs, gn, sec, wantN)
			}
			l.Parse(junk, loc, now) // must not panic
		}
		if l, err := Compile(junk); err == nil {
			l.Parse(junk, loc, now)
		}
	})
}
