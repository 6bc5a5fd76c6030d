// Package protocoltest provides test corpora and converters for code that
// uses package protocol: realistic nginx LogGroups for benchmarks and fuzz
// seeds, random LogGroups for property tests, and conversion to and from the
// Go SDK's generated types (github.com/aliyun/aliyun-log-go-sdk) for
// differential tests. It is for tests only.
package protocoltest

import (
	_ "embed"
	"math/rand/v2"
	"regexp"
	"strings"

	sls "github.com/aliyun/aliyun-log-go-sdk"

	"github.com/sluicelog/sluice/protocol"
)

//go:embed testdata/nginx_access.log
var nginxAccessLog string

var nginxLine = regexp.MustCompile(`^(\S+) - (\S+) \[([^\]]+)\] "(\S+) (\S+) (\S+)" (\d+) (\d+) "([^"]*)" "([^"]*)" (\S+)$`)

// NginxKeys are the ten keys of every log NginxLogGroup returns.
var NginxKeys = [...]string{
	"remote_addr", "remote_user", "time_local", "method", "request_uri",
	"protocol", "status", "body_bytes_sent", "http_referer", "http_user_agent",
}

// NginxLines returns the nginx access log lines of the corpus (1000 lines,
// about 200 KB, combined log format plus request time).
func NginxLines() []string {
	return strings.Split(strings.TrimSuffix(nginxAccessLog, "\n"), "\n")
}

// NginxLogGroup returns a LogGroup of parsed nginx access logs, ten keys
// each, with a topic, source and three tags, as an agent would send it. Logs
// are added (cycling through the corpus) until the encoded group is at least
// minSize bytes.
func NginxLogGroup(minSize int) *protocol.LogGroup {
	g := &protocol.LogGroup{
		Topic:  "nginx-access",
		Source: "10.0.3.17",
		LogTags: []protocol.LogTag{
			{Key: "__hostname__", Value: "web-7d9f8c6b5-x2x4q"},
			{Key: "__path__", Value: "/var/log/nginx/access.log"},
			{Key: "__pack_id__", Value: "5B2F1A3C4D5E6F70-1"},
		},
	}
	lines := NginxLines()
	size := protocol.LogGroupMetaSize(g)
	for i := 0; size < minSize; i++ {
		m := nginxLine.FindStringSubmatch(lines[i%len(lines)])
		l := protocol.Log{Time: 1709632800 + uint32(i), TimeNs: uint32(i%1000) * 1e6, HasTimeNs: true}
		for k, key := range NginxKeys {
			l.Contents = append(l.Contents, protocol.LogContent{Key: key, Value: m[k+1]})
		}
		g.Logs = append(g.Logs, l)
		size += protocol.LogSize(&l)
	}
	return g
}

// RandomLogGroup returns a LogGroup with random shape and content (empty and
// non-ASCII strings, optional fields present or not, long values) for
// property tests. Equal seeds give equal groups.
func RandomLogGroup(r *rand.Rand) *protocol.LogGroup {
	str := func() string {
		switch r.IntN(6) {
		case 0:
			return ""
		case 1:
			return strings.Repeat("x", 100+r.IntN(400)) // multi-byte length varint
		case 2:
			return "日志-" + string(rune(0x4e00+r.IntN(100)))
		}
		b := make([]byte, r.IntN(20))
		for i := range b {
			b[i] = byte(r.IntN(256))
		}
		return string(b)
	}
	g := &protocol.LogGroup{}
	if r.IntN(2) == 0 {
		g.Topic = str()
	}
	if r.IntN(2) == 0 {
		g.Source = str()
	}
	if r.IntN(4) == 0 {
		g.Category = str()
	}
	if r.IntN(4) == 0 {
		g.MachineUUID = str()
	}
	for range r.IntN(4) {
		g.LogTags = append(g.LogTags, protocol.LogTag{Key: str(), Value: str()})
	}
	for range r.IntN(20) {
		l := protocol.Log{Time: r.Uint32()}
		if r.IntN(2) == 0 {
			l.Time = uint32(r.IntN(200)) // one- and two-byte varints
		}
		if r.IntN(2) == 0 {
			l.TimeNs, l.HasTimeNs = r.Uint32(), true
		}
		for range r.IntN(12) {
			l.Contents = append(l.Contents, protocol.LogContent{Key: str(), Value: str()})
		}
		g.Logs = append(g.Logs, l)
	}
	return g
}

func ptr[T any](v T) *T { return &v }

// optional returns nil for "", as the SDK leaves unset optional strings nil.
func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// ToSDK converts g to the SDK's generated type (Log.Values has no SDK
// equivalent and is dropped).
func ToSDK(g *protocol.LogGroup) *sls.LogGroup {
	s := &sls.LogGroup{
		Category:    optional(g.Category),
		Topic:       optional(g.Topic),
		Source:      optional(g.Source),
		MachineUUID: optional(g.MachineUUID),
	}
	for _, t := range g.LogTags {
		s.LogTags = append(s.LogTags, &sls.LogTag{Key: ptr(t.Key), Value: ptr(t.Value)})
	}
	for i := range g.Logs {
		l := &g.Logs[i]
		sl := &sls.Log{Time: ptr(l.Time)}
		if l.HasTimeNs {
			sl.TimeNs = ptr(l.TimeNs)
		}
		for _, c := range l.Contents {
			sl.Contents = append(sl.Contents, &sls.LogContent{Key: ptr(c.Key), Value: ptr(c.Value)})
		}
		s.Logs = append(s.Logs, sl)
	}
	return s
}

// FromSDK converts the SDK's generated type to a LogGroup.
func FromSDK(s *sls.LogGroup) *protocol.LogGroup {
	g := &protocol.LogGroup{
		Category:    s.GetCategory(),
		Topic:       s.GetTopic(),
		Source:      s.GetSource(),
		MachineUUID: s.GetMachineUUID(),
	}
	for _, t := range s.LogTags {
		g.LogTags = append(g.LogTags, protocol.LogTag{Key: t.GetKey(), Value: t.GetValue()})
	}
	for _, sl := range s.Logs {
		l := protocol.Log{Time: sl.GetTime()}
		if sl.TimeNs != nil {
			l.TimeNs, l.HasTimeNs = *sl.TimeNs, true
		}
		for _, c := range sl.Contents {
			l.Contents = append(l.Contents, protocol.LogContent{Key: c.GetKey(), Value: c.GetValue()})
		}
		g.Logs = append(g.Logs, l)
	}
	return g
}

// Normalize returns a copy of g with nil instead of empty slices, so that
// groups that encode identically compare equal with require.Equal.
func Normalize(g *protocol.LogGroup) *protocol.LogGroup {
	c := *g
	c.Logs = nil
	for _, l := range g.Logs {
		if len(l.Contents) == 0 {
			l.Contents = nil
		}
		if len(l.Values) == 0 {
			l.Values = nil
		}
		if !l.HasTimeNs {
			l.TimeNs = 0
		}
		c.Logs = append(c.Logs, l)
	}
	if len(c.LogTags) == 0 {
		c.LogTags = nil
	}
	return &c
}
