package containerstdout

import (
	"bytes"
	"encoding/json"
	"errors"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// Record is one line of a container runtime's log file, decoded.
// Slices alias the line or the caller's scratch buffer.
type Record struct {
	// Time is the runtime's timestamp as written (RFC 3339, nanoseconds).
	Time []byte
	// Stream is "stdout" or "stderr" (or whatever the runtime wrote).
	Stream []byte
	// Partial: the app's line continues in the next record of the stream
	// (CRI tag P; Docker "log" without its trailing newline).
	Partial bool
	// Content is the text, without the newline Docker keeps.
	Content []byte
}

// Errors of the record decoders.
var (
	ErrCRI        = errors.New("not a CRI log line: want \"<RFC3339 time> <stdout|stderr> <P|F> <text>\"")
	ErrDockerJSON = errors.New("not a Docker json-file line: want {\"log\":...,\"stream\":...,\"time\":...}")
)

// DecodeLine decodes a line of either format: Docker json-file lines start
// with '{', CRI lines with their timestamp. scratch receives unescaped
// Docker text and is returned (grown) for reuse.
func DecodeLine(line, scratch []byte) (Record, []byte, error) {
	if len(line) > 0 && line[0] == '{' {
		return DecodeDockerJSON(line, scratch)
	}
	r, err := DecodeCRI(line)
	return r, scratch, err
}

// DecodeCRI decodes "<time> <stream> <tag> <text>", the format kubelet's
// CRI runtimes write under /var/log/pods. Tags other than P and F (future
// flags are ':'-separated) are accepted; only P marks a partial record.
// The text may be empty ("<time> <stream> F" or with a trailing space).
func DecodeCRI(line []byte) (Record, error) {
	var r Record
	i := bytes.IndexByte(line, ' ')
	if i <= 0 {
		return r, ErrCRI
	}
	r.Time = line[:i]
	rest := line[i+1:]
	j := bytes.IndexByte(rest, ' ')
	if j <= 0 {
		return r, ErrCRI
	}
	r.Stream = rest[:j]
	rest = rest[j+1:]
	k := bytes.IndexByte(rest, ' ')
	var tag []byte
	if k < 0 {
		tag, rest = rest, nil
	} else {
		tag, rest = rest[:k], rest[k+1:]
	}
	if len(tag) == 0 || !validTime(r.Time) {
		return Record{}, ErrCRI
	}
	// Tags are ':'-separated flags; the first is P or F.
	if c := bytes.IndexByte(tag, ':'); c >= 0 {
		tag = tag[:c]
	}
	r.Partial = len(tag) == 1 && tag[0] == 'P'
	r.Content = rest
	return r, nil
}

// validTime is a cheap shape check: a date first ("2024-01-01T…").
func validTime(t []byte) bool {
	return len(t) >= 20 && t[4] == '-' && t[7] == '-' && (t[10] == 'T' || t[10] == 't')
}

// DecodeDockerJSON decodes a Docker json-file line. Objects whose values
// are all strings (what dockerd writes, apart from "attrs") are decoded by
// hand without allocating; anything else goes through encoding/json. Raw
// control characters inside strings (invalid JSON, never written by dockerd)
// are kept rather than refused: the line is still the app's output.
func DecodeDockerJSON(line, scratch []byte) (Record, []byte, error) {
	var r Record
	p := bytes.TrimSpace(line)
	if len(p) < 2 || p[0] != '{' || p[len(p)-1] != '}' {
		return r, scratch, ErrDockerJSON
	}
	scratch = scratch[:0]
	var haveLog bool
	var logStart int
	i := 1
	for first := true; ; first = false {
		i = skipWS(p, i)
		if first && i < len(p) && p[i] == '}' && i == len(p)-1 {
			break // {}
		}
		if i >= len(p) || p[i] != '"' {
			return slowDockerJSON(p, scratch)
		}
		key, next, ok := rawString(p, i)
		if !ok {
			return r, scratch, ErrDockerJSON
		}
		i = skipWS(p, next)
		if i >= len(p) || p[i] != ':' {
			return r, scratch, ErrDockerJSON
		}
		i = skipWS(p, i+1)
		if i >= len(p) || p[i] != '"' {
			return slowDockerJSON(p, scratch) // attrs object, numbers
		}
		val, next, ok := rawString(p, i)
		if !ok {
			return r, scratch, ErrDockerJSON
		}
		i = next
		switch string(key) {
		case "log":
			logStart = len(scratch)
			if scratch, ok = unescape(scratch, val); !ok {
				return r, scratch, ErrDockerJSON
			}
			haveLog = true
			r.Content = scratch[logStart:] // fixed up below: scratch may grow
		case "stream":
			r.Stream = val // stream names have no escapes
		case "time":
			r.Time = val
		}
		i = skipWS(p, i)
		if i < len(p) && p[i] == ',' {
			i++
			continue
		}
		if i == len(p)-1 && p[i] == '}' {
			break
		}
		return r, scratch, ErrDockerJSON
	}
	if !haveLog {
		return Record{}, scratch, ErrDockerJSON
	}
	r.Content = scratch[logStart:]
	r.Content, r.Partial = trimNewline(r.Content)
	return r, scratch, nil
}

func trimNewline(b []byte) ([]byte, bool) {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
		if n := len(b); n > 0 && b[n-1] == '\r' {
			b = b[:n-1]
		}
		return b, false
	}
	return b, true
}

func slowDockerJSON(p, scratch []byte) (Record, []byte, error) {
	var v struct {
		Log    *string `json:"log"`
		Stream string  `json:"stream"`
		Time   string  `json:"time"`
	}
	if err := json.Unmarshal(p, &v); err != nil || v.Log == nil {
		return Record{}, scratch, ErrDockerJSON
	}
	scratch = append(scratch[:0], *v.Log...)
	n := len(scratch)
	scratch = append(scratch, v.Stream...)
	scratch = append(scratch, v.Time...)
	r := Record{
		Content: scratch[:n:n],
		Stream:  scratch[n : n+len(v.Stream) : n+len(v.Stream)],
		Time:    scratch[n+len(v.Stream):],
	}
	r.Content, r.Partial = trimNewline(r.Content)
	return r, scratch, nil
}

func skipWS(p []byte, i int) int {
	for i < len(p) && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r') {
		i++
	}
	return i
}

// rawString returns the still-escaped body of the JSON string starting at
// p[i] == '"' and the index after its closing quote.
func rawString(p []byte, i int) ([]byte, int, bool) {
	for j := i + 1; j < len(p); j++ {
		switch p[j] {
		case '\\':
			j++
		case '"':
			return p[i+1 : j], j + 1, true
		}
	}
	return nil, 0, false
}

// unescape appends the JSON string body s, unescaped, to dst. Invalid
// \u escapes and lone surrogates become U+FFFD, as encoding/json does.
func unescape(dst, s []byte) ([]byte, bool) {
	for len(s) > 0 {
		k := bytes.IndexByte(s, '\\')
		if k < 0 {
			return append(dst, s...), true
		}
		dst = append(dst, s[:k]...)
		s = s[k:]
		if len(s) < 2 {
			return dst, false
		}
		switch c := s[1]; c {
		case '"', '\\', '/':
			dst = append(dst, c)
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r, ok := hex4(s[2:])
			if !ok {
				return dst, false
			}
			s = s[6:]
			if utf16.IsSurrogate(r) {
				if r2, ok := hex4(s[min(2, len(s)):]); ok && len(s) >= 6 && s[0] == '\\' && s[1] == 'u' {
					if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
						s = s[6:]
						dst = utf8.AppendRune(dst, dec)
						continue
					}
				}
				r = utf8.RuneError
			}
			dst = utf8.AppendRune(dst, r)
			continue
		default:
			return dst, false
		}
		s = s[2:]
	}
	return dst, true
}

func hex4(s []byte) (rune, bool) {
	if len(s) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range s[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// ParseTime parses the runtime's RFC 3339 timestamp without allocating in
// the common UTC form ("2024-01-01T00:00:00.123456789Z"); other offsets go
// through time.Parse.
func ParseTime(b []byte) (time.Time, bool) {
	if len(b) >= 20 && b[len(b)-1] == 'Z' && b[4] == '-' && b[7] == '-' && b[10] == 'T' && b[13] == ':' && b[16] == ':' {
		num := func(s []byte) (int, bool) {
			n := 0
			for _, c := range s {
				if c < '0' || c > '9' {
					return 0, false
				}
				n = n*10 + int(c-'0')
			}
			return n, true
		}
		y, ok1 := num(b[0:4])
		mo, ok2 := num(b[5:7])
		d, ok3 := num(b[8:10])
		h, ok4 := num(b[11:13])
		mi, ok5 := num(b[14:16])
		s, ok6 := num(b[17:19])
		ns := 0
		ok7 := true
		if frac := b[19 : len(b)-1]; len(frac) > 0 {
			if frac[0] != '.' || len(frac) < 2 || len(frac) > 10 {
				ok7 = false
			} else {
				var v int
				v, ok7 = num(frac[1:])
				for range 10 - len(frac) {
					v *= 10
				}
				ns = v
			}
		}
		if ok1 && ok2 && ok3 && ok4 && ok5 && ok6 && ok7 && mo >= 1 && mo <= 12 && d >= 1 && d <= 31 && h < 24 && mi < 60 && s < 61 {
			return time.Date(y, time.Month(mo), d, h, mi, s, ns, time.UTC), true
		}
	}
	t, err := time.Parse(time.RFC3339Nano, string(b))
	return t, err == nil
}
