package containerstdout

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestDecodeCRI(t *testing.T) {
	for _, tc := range []struct {
		line    string
		want    Record
		wantErr bool
	}{
		{line: "2024-01-01T00:00:00.123456789Z stdout F hello world",
			want: Record{Time: []byte("2024-01-01T00:00:00.123456789Z"), Stream: []byte("stdout"), Content: []byte("hello world")}},
		{line: "2024-01-01T00:00:00.1Z stderr P part one ",
			want: Record{Time: []byte("2024-01-01T00:00:00.1Z"), Stream: []byte("stderr"), Partial: true, Content: []byte("part one ")}},
		{line: "2024-01-01T00:00:00Z stdout F",
			want: Record{Time: []byte("2024-01-01T00:00:00Z"), Stream: []byte("stdout"), Content: nil}},
		{line: "2024-01-01T00:00:00Z stdout F ",
			want: Record{Time: []byte("2024-01-01T00:00:00Z"), Stream: []byte("stdout"), Content: []byte{}}},
		{line: "2024-01-01T00:00:00+08:00 stdout F:x  two  spaces",
			want: Record{Time: []byte("2024-01-01T00:00:00+08:00"), Stream: []byte("stdout"), Content: []byte(" two  spaces")}},
		{line: "hello world", wantErr: true},
		{line: "", wantErr: true},
		{line: "2024-01-01T00:00:00Z stdout", wantErr: true},
		{line: "notatime.......... stdout F x", wantErr: true},
	} {
		t.Run(tc.line, func(t *testing.T) {
			got, err := DecodeCRI([]byte(tc.line))
			if tc.wantErr {
				require.ErrorIs(t, err, ErrCRI)
				return
			}
			require.NoError(t, err)
			require.Equal(t, string(tc.want.Time), string(got.Time))
			require.Equal(t, string(tc.want.Stream), string(got.Stream))
			require.Equal(t, tc.want.Partial, got.Partial)
			require.Equal(t, string(tc.want.Content), string(got.Content))
		})
	}
}

func TestDecodeDockerJSON(t *testing.T) {
	for _, tc := range []struct {
		name, line      string
		content, stream string
		time            string
		partial         bool
		wantErr         bool
	}{
		{name: "plain", line: `{"log":"hello\n","stream":"stdout","time":"2024-01-01T00:00:00.5Z"}`,
			content: "hello", stream: "stdout", time: "2024-01-01T00:00:00.5Z"},
		{name: "partial", line: `{"log":"hel","stream":"stderr","time":"2024-01-01T00:00:00Z"}`,
			content: "hel", stream: "stderr", time: "2024-01-01T00:00:00Z", partial: true},
		{name: "escapes", line: `{"log":"a\"b\\c\/d\te\u003cf\u00e9 \ud83d\ude00 \ud800x\r\n","stream":"stdout","time":"t"}`,
			content: "a\"b\\c/d\te<fé 😀 \uFFFDx", stream: "stdout", time: "t"},
		{name: "order and spaces", line: ` { "time" : "t" , "stream":"stdout", "log" : "x\n" } `,
			content: "x", stream: "stdout", time: "t"},
		{name: "attrs (slow path)", line: `{"log":"x\n","attrs":{"k":"v"},"stream":"stdout","time":"t"}`,
			content: "x", stream: "stdout", time: "t"},
		{name: "no log", line: `{"stream":"stdout","time":"t"}`, wantErr: true},
		{name: "truncated", line: `{"log":"abc`, wantErr: true},
		{name: "bad escape", line: `{"log":"a\qb","stream":"stdout"}`, wantErr: true},
		{name: "not json", line: `{nope}`, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, _, err := DecodeDockerJSON([]byte(tc.line), nil)
			if tc.wantErr {
				require.ErrorIs(t, err, ErrDockerJSON)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.content, string(got.Content))
			require.Equal(t, tc.stream, string(got.Stream))
			require.Equal(t, tc.time, string(got.Time))
			require.Equal(t, tc.partial, got.Partial)
		})
	}
}

func TestParseTime(t *testing.T) {
	for _, s := range []string{
		"2024-01-01T00:00:00Z", "2024-01-01T00:00:00.123456789Z", "2024-02-29T23:59:59.1Z",
		"2024-01-01T08:00:00.5+08:00", "2024-06-30T12:34:56.000001Z",
	} {
		want, err := time.Parse(time.RFC3339Nano, s)
		require.NoError(t, err)
		got, ok := ParseTime([]byte(s))
		require.True(t, ok, s)
		require.True(t, want.Equal(got), "%s: %v != %v", s, got, want)
	}
	for _, s := range []string{"", "2024-13-01T00:00:00Z", "2024-01-01T00:00:00.Z", "yesterday"} {
		_, ok := ParseTime([]byte(s))
		require.False(t, ok, s)
	}
}
