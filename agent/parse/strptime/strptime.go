// Package strptime parses timestamps described by strftime formats, the
// `timeFormat` of Logtail collection configs (`%Y-%m-%d %H:%M:%S`,
// `%d/%b/%Y:%H:%M:%S %z`, …).
//
// Why hand-written: Go's time.Parse wants reference layouts, not strftime
// directives, and the strftime libraries for Go (lestrrat-go/strftime and
// others) only format. Translating strftime to a Go layout is lossy (%s, %j,
// %f of any width, %e, whitespace rules have no layout equivalent), and
// time.Parse allocates on errors. A Layout is compiled once per config and
// parses without allocating: it is on the hot path of every parsed event.
//
// Semantics follow glibc strptime as Logtail uses it: numeric fields take up
// to their width in digits (at least one), leading spaces allowed; a space
// in the format matches any run of whitespace (including none); other text
// must match literally; names (%b, %a, %p, %Z) match case-insensitively;
// input left after the format is ignored (so `%H:%M:%S` accepts
// `10:00:00,123`). Supported: %Y %y %m %d %e %H %k %I %l %M %S %f %s %j %b
// %h %B %a %A %p %z %Z %T %F %D %R %n %t %%.
package strptime

import (
	"fmt"
	"strings"
	"time"
)

type opKind uint8

const (
	opLit opKind = iota
	opSpace
	opYear
	opYear2
	opMonth
	opDay
	opHour
	opHour12
	opMinute
	opSecond
	opFrac
	opEpoch
	opYearDay
	opMonthName
	opWeekdayName
	opAMPM
	opZoneOffset
	opZoneName
)

type op struct {
	kind opKind
	lit  string
}

// Layout is a compiled strftime format. It is safe for concurrent use.
type Layout struct {
	format  string
	ops     []op
	hasYear bool
	hasDate bool // month/day or day of year given
}

// Compile parses a strftime format.
func Compile(format string) (*Layout, error) {
	l := &Layout{format: format}
	if format == "" {
		return nil, fmt.Errorf("time format is empty")
	}
	if err := l.compile(format, 0); err != nil {
		return nil, err
	}
	return l, nil
}

func (l *Layout) compile(f string, depth int) error {
	lit := func(s string) {
		if n := len(l.ops); n > 0 && l.ops[n-1].kind == opLit {
			l.ops[n-1].lit += s
			return
		}
		l.ops = append(l.ops, op{kind: opLit, lit: s})
	}
	for i := 0; i < len(f); i++ {
		c := f[i]
		if c == ' ' || c == '\t' || c == '\n' {
			if n := len(l.ops); n == 0 || l.ops[n-1].kind != opSpace {
				l.ops = append(l.ops, op{kind: opSpace})
			}
			continue
		}
		if c != '%' {
			lit(f[i : i+1])
			continue
		}
		i++
		if i == len(f) {
			return fmt.Errorf("time format %q ends with a lone %%", l.format)
		}
		d := f[i]
		// Glibc's E and O modifiers (%Ey, %Od) select alternative numerals;
		// they parse as the plain directive.
		if (d == 'E' || d == 'O') && i+1 < len(f) {
			i++
			d = f[i]
		}
		var k opKind
		switch d {
		case 'Y':
			k, l.hasYear = opYear, true
		case 'y':
			k, l.hasYear = opYear2, true
		case 'm':
			k, l.hasDate = opMonth, true
		case 'd', 'e':
			k, l.hasDate = opDay, true
		case 'H', 'k':
			k = opHour
		case 'I', 'l':
			k = opHour12
		case 'M':
			k = opMinute
		case 'S':
			k = opSecond
		case 'f':
			k = opFrac
		case 's':
			k, l.hasYear, l.hasDate = opEpoch, true, true
		case 'j':
			k, l.hasDate = opYearDay, true
		case 'b', 'h', 'B':
			k, l.hasDate = opMonthName, true
		case 'a', 'A':
			k = opWeekdayName
		case 'p':
			k = opAMPM
		case 'z':
			k = opZoneOffset
		case 'Z':
			k = opZoneName
		case 'T', 'F', 'D', 'R':
			if depth > 0 {
				return fmt.Errorf("time format %q: nested %%%c", l.format, d)
			}
			sub := map[byte]string{'T': "%H:%M:%S", 'F': "%Y-%m-%d", 'D': "%m/%d/%y", 'R': "%H:%M"}[d]
			if err := l.compile(sub, depth+1); err != nil {
				return err
			}
			continue
		case 'n', 't':
			if n := len(l.ops); n == 0 || l.ops[n-1].kind != opSpace {
				l.ops = append(l.ops, op{kind: opSpace})
			}
			continue
		case '%':
			lit("%")
			continue
		default:
			return fmt.Errorf("time format %q: unsupported directive %%%c (supported: %%Y %%y %%m %%d %%e %%H %%I %%M %%S %%f %%s %%j %%b %%B %%a %%A %%p %%z %%Z %%T %%F %%D %%R %%%%)", l.format, d)
		}
		l.ops = append(l.ops, op{kind: k})
	}
	return nil
}

// String returns the format.
func (l *Layout) String() string { return l.format }

var months = [12]string{"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"}
var monthsLong = [12]string{"january", "february", "march", "april", "may", "june", "july", "august", "september", "october", "november", "december"}
var days = [7]string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}
var daysLong = [7]string{"sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"}

// hasPrefixFold reports whether s starts with the lower-case ASCII word w,
// ignoring case.
func hasPrefixFold(s, w string) bool {
	if len(s) < len(w) {
		return false
	}
	for i := 0; i < len(w); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != w[i] {
			return false
		}
	}
	return true
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}

// num reads 1..width digits at s[p:], after optional spaces.
func num(s string, p, width int) (v, np int, ok bool) {
	for p < len(s) && s[p] == ' ' {
		p++
	}
	start := p
	for p < len(s) && p-start < width && '0' <= s[p] && s[p] <= '9' {
		v = v*10 + int(s[p]-'0')
		p++
	}
	return v, p, p > start
}

// Parse parses s. Fields the format does not give come from the date of
// now in loc (year, month, day) or are zero (time of day). Without %z/%s the
// wall time is interpreted in loc. It returns false if s does not fit.
func (l *Layout) Parse(s string, loc *time.Location, now time.Time) (sec int64, nsec int32, ok bool) {
	year, month, day := 1970, 1, 1
	if !l.hasYear || !l.hasDate {
		y, m, d := now.In(loc).Date()
		if !l.hasYear {
			year = y
		}
		if !l.hasDate {
			month, day = int(m), d
		}
	}
	hour, minute, second, frac, yday := 0, 0, 0, 0, 0
	pm, hour12 := -1, false
	zone, hasZone := 0, false
	epoch, hasEpoch := int64(0), false
	p := 0
	var v int
	for _, o := range l.ops {
		switch o.kind {
		case opLit:
			if len(s)-p < len(o.lit) || s[p:p+len(o.lit)] != o.lit {
				return 0, 0, false
			}
			p += len(o.lit)
			continue
		case opSpace:
			for p < len(s) && isSpace(s[p]) {
				p++
			}
			continue
		case opYear:
			neg := false
			if p < len(s) && (s[p] == '-' || s[p] == '+') {
				neg = s[p] == '-'
				p++
			}
			if v, p, ok = num(s, p, 4); !ok {
				return 0, 0, false
			}
			if neg {
				v = -v
			}
			year = v
		case opYear2:
			if v, p, ok = num(s, p, 2); !ok {
				return 0, 0, false
			}
			if v < 69 {
				year = 2000 + v
			} else {
				year = 1900 + v
			}
		case opMonth:
			if v, p, ok = num(s, p, 2); !ok || v < 1 || v > 12 {
				return 0, 0, false
			}
			month = v
		case opDay:
			if v, p, ok = num(s, p, 2); !ok || v < 1 || v > 31 {
				return 0, 0, false
			}
			day = v
		case opHour:
			if v, p, ok = num(s, p, 2); !ok || v > 23 {
				return 0, 0, false
			}
			hour = v
		case opHour12:
			if v, p, ok = num(s, p, 2); !ok || v < 1 || v > 12 {
				return 0, 0, false
			}
			hour, hour12 = v, true
		case opMinute:
			if v, p, ok = num(s, p, 2); !ok || v > 59 {
				return 0, 0, false
			}
			minute = v
		case opSecond:
			if v, p, ok = num(s, p, 2); !ok || v > 60 {
				return 0, 0, false
			}
			second = v
		case opFrac:
			start := p
			frac = 0
			for p < len(s) && '0' <= s[p] && s[p] <= '9' {
				if p-start < 9 {
					frac = frac*10 + int(s[p]-'0')
				}
				p++
			}
			n := p - start
			if n == 0 {
				return 0, 0, false
			}
			for ; n < 9; n++ {
				frac *= 10
			}
		case opEpoch:
			start := p
			var e int64
			for p < len(s) && '0' <= s[p] && s[p] <= '9' && p-start < 18 {
				e = e*10 + int64(s[p]-'0')
				p++
			}
			if p == start {
				return 0, 0, false
			}
			epoch, hasEpoch = e, true
		case opYearDay:
			if v, p, ok = num(s, p, 3); !ok || v < 1 || v > 366 {
				return 0, 0, false
			}
			yday = v
		case opMonthName:
			rest := s[p:]
			found := false
			for i := range months {
				if hasPrefixFold(rest, monthsLong[i]) {
					month, p, found = i+1, p+len(monthsLong[i]), true
					break
				}
				if hasPrefixFold(rest, months[i]) {
					month, p, found = i+1, p+3, true
					break
				}
			}
			if !found {
				return 0, 0, false
			}
		case opWeekdayName:
			rest := s[p:]
			found := false
			for i := range days {
				if hasPrefixFold(rest, daysLong[i]) {
					p, found = p+len(daysLong[i]), true
					break
				}
				if hasPrefixFold(rest, days[i]) {
					p, found = p+3, true
					break
				}
			}
			if !found {
				return 0, 0, false
			}
		case opAMPM:
			switch {
			case hasPrefixFold(s[p:], "am"):
				pm = 0
			case hasPrefixFold(s[p:], "pm"):
				pm = 1
			default:
				return 0, 0, false
			}
			p += 2
		case opZoneOffset:
			if zone, p, ok = zoneOffset(s, p); !ok {
				return 0, 0, false
			}
			hasZone = true
		case opZoneName:
			// Abbreviations are ambiguous (CST); only UTC/GMT/Z are
			// trusted, others are skipped and the wall time stays in loc.
			start := p
			for p < len(s) && (('A' <= s[p] && s[p] <= 'Z') || ('a' <= s[p] && s[p] <= 'z')) {
				p++
			}
			if p == start {
				return 0, 0, false
			}
			switch name := s[start:p]; {
			case strings.EqualFold(name, "UTC"), strings.EqualFold(name, "GMT"), name == "Z":
				zone, hasZone = 0, true
			}
		}
	}
	if hasEpoch {
		return epoch, int32(frac), true
	}
	if hour12 {
		if pm < 0 {
			pm = 0
		}
		hour = hour%12 + 12*pm
	} else if pm == 1 && hour < 12 {
		hour += 12
	}
	if yday > 0 {
		month, day = 1, yday // time.Date normalises Jan 40 to Feb 9
	}
	if hasZone {
		days := daysFromCivil(year, month, day)
		return days*86400 + int64(hour*3600+minute*60+second) - int64(zone), int32(frac), true
	}
	t := time.Date(year, time.Month(month), day, hour, minute, second, 0, loc)
	return t.Unix(), int32(frac), true
}

// daysFromCivil is the number of days since 1970-01-01 of a proleptic
// Gregorian date (Howard Hinnant's algorithm); out-of-range days roll over.
func daysFromCivil(y, m, d int) int64 {
	if m <= 2 {
		y--
	}
	era := y
	if era < 0 {
		era -= 399
	}
	era /= 400
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return int64(era)*146097 + int64(doe) - 719468
}

// zoneOffset reads Z, ±hh, ±hhmm or ±hh:mm and returns seconds east of UTC.
func zoneOffset(s string, p int) (int, int, bool) {
	if p < len(s) && (s[p] == 'Z' || s[p] == 'z') {
		return 0, p + 1, true
	}
	if p >= len(s) || (s[p] != '+' && s[p] != '-') {
		return 0, p, false
	}
	sign := 1
	if s[p] == '-' {
		sign = -1
	}
	p++
	digits := func(n int) (int, bool) {
		if len(s)-p < n {
			return 0, false
		}
		v := 0
		for i := 0; i < n; i++ {
			c := s[p+i]
			if c < '0' || c > '9' {
				return 0, false
			}
			v = v*10 + int(c-'0')
		}
		p += n
		return v, true
	}
	h, ok := digits(2)
	if !ok || h > 14 {
		return 0, p, false
	}
	m := 0
	if p < len(s) && s[p] == ':' {
		p++
		if m, ok = digits(2); !ok {
			return 0, p, false
		}
	} else if len(s)-p >= 2 && '0' <= s[p] && s[p] <= '9' {
		if m, ok = digits(2); !ok {
			return 0, p, false
		}
	}
	if m > 59 {
		return 0, p, false
	}
	return sign * (h*3600 + m*60), p, true
}

// ParseTimezone parses Logtail's logTimezone (`GMT+08:00`, `GMT-03:30`,
// also `UTC+8`, `+0800`) into a fixed zone.
func ParseTimezone(tz string) (*time.Location, error) {
	s := tz
	if len(s) >= 3 && (strings.EqualFold(s[:3], "GMT") || strings.EqualFold(s[:3], "UTC")) {
		s = s[3:]
	}
	if s == "" {
		return time.UTC, nil
	}
	// Accept a one-digit hour (UTC+8) by padding it.
	if len(s) >= 2 && (s[0] == '+' || s[0] == '-') && (len(s) == 2 || s[2] == ':') {
		s = s[:1] + "0" + s[1:]
	}
	off, p, ok := zoneOffset(s, 0)
	if !ok || p != len(s) {
		return nil, fmt.Errorf("invalid timezone %q: want GMT+hh:mm, e.g. GMT+08:00", tz)
	}
	return time.FixedZone(tz, off), nil
}
