package containerstdout

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/sluicelog/sluice/agent/input/file"
	"github.com/sluicelog/sluice/agent/multiline"
)

func FuzzDecodeCRI(f *testing.F) {
	for _, s := range []string{
		"2024-01-01T00:00:00.123456789Z stdout F hello",
		"2024-01-01T00:00:00Z stderr P part",
		"2024-01-01T00:00:00Z stdout F",
		"2024-01-01T00:00:00+08:00 stdout F:x y",
		"garbage", "", " ", "a b c d",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		r, err := DecodeCRI(line)
		if err != nil {
			return
		}
		// Every part is a piece of the line, in order, and the text is its tail.
		if !bytes.HasPrefix(line, r.Time) || !bytes.HasSuffix(line, r.Content) || len(r.Stream) == 0 {
			t.Fatalf("record %+v does not come from %q", r, line)
		}
	})
}

func FuzzDecodeDockerJSON(f *testing.F) {
	for _, s := range []string{
		`{"log":"hello\n","stream":"stdout","time":"2024-01-01T00:00:00.5Z"}`,
		`{"log":"part","stream":"stderr","time":"t"}`,
		`{"log":"\u00e9\ud83d\ude00\ud800\"\\\/\b\f\r\t\n","stream":"stdout","time":"t"}`,
		`{"log":"x\n","attrs":{"k":"v"},"stream":"stdout","time":"t"}`,
		`{"log":1}`, `{}`, `{"log":"abc`, `{"log":"\u12"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		r, _, err := DecodeDockerJSON(line, nil)
		var ref struct {
			Log    *string `json:"log"`
			Stream string  `json:"stream"`
		}
		refErr := json.Unmarshal(bytes.TrimSpace(line), &ref)
		if err != nil {
			return // stricter than encoding/json is fine (e.g. duplicate or odd keys); no panic is the point
		}
		if refErr != nil || ref.Log == nil {
			// The fast path accepted what encoding/json refuses: only
			// tolerable for invalid UTF-8, which json replaces rather than
			// refuses, and raw control characters, which are kept.
			if utf8.Valid(line) && !bytes.ContainsFunc(line, func(r rune) bool { return r < 0x20 }) {
				t.Fatalf("accepted invalid JSON %q", line)
			}
			return
		}
		want := strings.TrimSuffix(*ref.Log, "\n")
		if utf8.Valid(line) && strings.Count(string(bytes.TrimSpace(line)), `"log"`) == 1 &&
			string(r.Content) != strings.TrimSuffix(want, "\r") && string(r.Content) != want {
			t.Fatalf("log %q: got %q, encoding/json %q", line, r.Content, want)
		}
	})
}

// FuzzDecoder pushes arbitrary lines through a multiline decoder: no
// panics, and End never moves backwards nor past the data pushed.
func FuzzDecoder(f *testing.F) {
	f.Add([]byte("2024-01-01T00:00:00Z stdout P a\n2024-01-01T00:00:00Z stderr F b\n2024-01-01T00:00:00Z stdout F c\n{\"log\":\"d\",\"stream\":\"stdout\",\"time\":\"t\"}\n"))
	f.Add([]byte("garbage\n\n2024-01-01T00:00:00Z stdout F 2024 x\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := NewDecoder(DecoderConfig{Stdout: true, Stderr: true, MaxLogSize: 64,
			Multiline: multiline.Config{BeginRegex: `\d+ .*`, MaxEventBytes: 128}})
		if err != nil {
			t.Fatal(err)
		}
		var last, off int64
		emit := func(ev file.Event) {
			if ev.End < last || ev.End > off {
				t.Fatalf("End %d after %d (pushed up to %d)", ev.End, last, off)
			}
			last = ev.End
		}
		for _, line := range bytes.Split(data, []byte("\n")) {
			off += int64(len(line)) + 1
			d.Push(line, off, emit)
		}
		d.Flush(emit)
		if d.Pending() {
			t.Fatal("pending after Flush")
		}
	})
}
