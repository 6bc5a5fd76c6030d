package parse

import (
	"strconv"
	"strings"
	"time"

	"github.com/sluicelog/sluice/agent/pipeline"
)

// apsaraParser is apsara_log, Alibaba's internal log format:
//
//	[2024-01-02 03:04:05.123456]\t[INFO]\t[12345]\t[src/file.cpp:42]\tkey:value\tkey:value
//
// as Logtail's ProcessorParseApsaraNative reads it: the first bracketed
// field is the time (`%Y-%m-%d %H:%M:%S` with optional fraction, in the log
// timezone, or unix seconds), the other bracketed fields become __LEVEL__
// (all capitals), __THREAD__ (all digits) and __FILE__/__LINE__ (contains '/'
// or '.'), the tab-separated key:value pairs after them become fields, and
// microtime holds the time in microseconds. An event whose time does not
// parse fails.
type apsaraParser struct {
	loc *time.Location
}

const maxApsaraBaseFields = 10

func (p *apsaraParser) parse(w *worker, out *pipeline.Batch, raw string) reason {
	if raw == "" {
		return unchanged
	}
	sec, micro, good := p.parseTime(raw)
	if !good {
		return reasonApsara
	}
	out.SetEventTime(uint32(sec), uint32(micro*1000))
	end := p.baseFields(out, raw)
	if end < len(raw) {
		beg, colon := 0, -1
		for i := end + 1; i <= len(raw); i++ {
			if i == len(raw) || raw[i] == '\t' {
				if colon >= 0 {
					out.AddFieldString(raw[beg:colon], raw[colon+1:i])
					colon = -1
				}
				beg = i + 1
			} else if raw[i] == ':' && colon == -1 {
				colon = i
			}
		}
	}
	w.buf = strconv.AppendInt(w.buf[:0], sec*1000000+micro, 10)
	out.AddField("microtime", w.buf)
	return ok
}

// parseTime reads the leading [time] field.
func (p *apsaraParser) parseTime(raw string) (sec, micro int64, good bool) {
	if len(raw) < 2 || raw[0] != '[' {
		return 0, 0, false
	}
	end := strings.IndexByte(raw, ']')
	if end < 0 {
		return 0, 0, false
	}
	s := raw[1:end]
	if s == "" {
		return 0, 0, false
	}
	if s[0] == '1' && !strings.Contains(s, "-") {
		// unix seconds
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil || v <= 0 || v > 1<<32-1 {
			return 0, 0, false
		}
		return v, 0, true
	}
	// %Y-%m-%d %H:%M:%S[.%f]
	if len(s) < 19 || s[4] != '-' || s[7] != '-' || s[10] != ' ' || s[13] != ':' || s[16] != ':' {
		return 0, 0, false
	}
	var f [6]int
	for i, r := range [6][2]int{{0, 4}, {5, 7}, {8, 10}, {11, 13}, {14, 16}, {17, 19}} {
		v := 0
		for _, c := range []byte(s[r[0]:r[1]]) {
			if c < '0' || c > '9' {
				return 0, 0, false
			}
			v = v*10 + int(c-'0')
		}
		f[i] = v
	}
	if f[1] < 1 || f[1] > 12 || f[2] < 1 || f[2] > 31 || f[3] > 23 || f[4] > 59 || f[5] > 60 {
		return 0, 0, false
	}
	if len(s) > 20 {
		// fraction after one separator character, up to 6 digits used
		n := 0
		for _, c := range []byte(s[20:]) {
			if c < '0' || c > '9' {
				break
			}
			if n < 6 {
				micro = micro*10 + int64(c-'0')
			}
			n++
		}
		for ; n < 6; n++ {
			micro *= 10
		}
	}
	sec = time.Date(f[0], time.Month(f[1]), f[2], f[3], f[4], f[5], 0, p.loc).Unix()
	if sec <= 0 || sec > 1<<32-1 {
		return 0, 0, false
	}
	return sec, micro, true
}

// baseFields adds the level, thread and file:line fields and returns the
// index of the last base field's closing bracket (0 when there is none).
func (p *apsaraParser) baseFields(out *pipeline.Batch, raw string) int {
	var begins, ends [maxApsaraBaseFields]int
	n := 0
	for i := 0; i < len(raw); i++ {
		switch raw[i] {
		case '[':
			begins[n] = i + 1
		case ']':
			if i+1 == len(raw) || raw[i+1] == '\t' || raw[i+1] == '\n' {
				ends[n] = i
				n++
			}
			if n >= maxApsaraBaseFields {
				break
			}
			if i+1 < len(raw) && raw[i+1] == '\t' && (i+2 == len(raw) || raw[i+2] != '[') {
				i = len(raw) // stop
			}
		}
		if n >= maxApsaraBaseFields {
			break
		}
	}
	if n == 0 {
		return 0
	}
	var found uint8
	for i := 1; found != 7 && i < n; i++ {
		b, e := begins[i], ends[i]
		if b > e {
			continue
		}
		v := raw[b:e]
		switch {
		case found&1 == 0 && allIn(v, 'A', 'Z'):
			found |= 1
			out.AddFieldString("__LEVEL__", v)
		case found&2 == 0 && allIn(v, '0', '9'):
			found |= 2
			out.AddFieldString("__THREAD__", v)
		case found&4 == 0 && strings.ContainsAny(v, "/."):
			found |= 4
			if c := strings.IndexByte(v, ':'); c >= 0 {
				out.AddFieldString("__FILE__", v[:c])
				out.AddFieldString("__LINE__", v[c+1:])
			} else {
				out.AddFieldString("__FILE__", v)
			}
		}
	}
	return ends[n-1]
}

func allIn(s string, lo, hi byte) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < lo || s[i] > hi {
			return false
		}
	}
	return true
}
