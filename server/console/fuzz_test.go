package console

import (
	"testing"
	"unicode/utf16"
	"unicode/utf8"
)

// FuzzCheckQuery: whatever the text, the check does not panic and an error
// position is inside the query, in bytes and in UTF-16 units alike.
func FuzzCheckQuery(f *testing.F) {
	for _, s := range []string{"", "*", "status:500 and (", `msg:"héllo 😀" and (`, "a | select count(*) frm", `"unclosed`,
		"* | select * from read_csv('/etc/passwd')", "key in [1 2", "\xff\xfe(", "__tag__:__path__:/var/log/*.log | select 1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		c := checkQueryText(text, "access")
		if c.OK {
			if c.Message != "" {
				t.Fatalf("ok with message %q", c.Message)
			}
			return
		}
		if c.Message == "" {
			t.Fatal("error without a message")
		}
		if c.Pos < 0 || c.Pos > len(text) {
			t.Fatalf("pos %d outside [0, %d]", c.Pos, len(text))
		}
		if c.Offset < 0 || c.Offset > c.Pos {
			t.Fatalf("utf-16 offset %d for byte pos %d", c.Offset, c.Pos)
		}
		if utf8.ValidString(text) && (c.Pos == len(text) || utf8.RuneStart(text[c.Pos])) {
			if want := len(utf16.Encode([]rune(text[:c.Pos]))); c.Offset != want {
				t.Fatalf("utf-16 offset %d, want %d (pos %d in %q)", c.Offset, want, c.Pos, text)
			}
		}
	})
}
