package query

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSandboxSizeCaps(t *testing.T) {
	opt := SandboxOptions{Relation: "log"}
	refused := []struct{ sql, msg string }{
		{`select range(1, 100000000)`, "would build 99999999 elements"},
		{`select range(100000000)`, "would build"},
		{`select generate_series(1, 1e9, 1)`, "would build"},
		{`select range(1, 10000*10000)`, "number literals only"},
		{`select range(1, status)`, "number literals only"},
		{`select range(1, 10, 0)`, "step must not be 0"},
		{`select unnest(range(1, 2000000))`, "would build"},
		{`select repeat('x', 100000000)`, "would build 100000000 bytes"},
		{`select repeat('ab', 600000)`, "would build 1200000 bytes"},
		{`select repeat('x', 10*10)`, "count must be a number literal"},
		{`select repeat(request_uri, 5000)`, "at most 1024 times"},
		{`select repeat(repeat('x', 1000), 1000)`, "repeat() inside repeat()"},
		{`select lpad('x', 100000000, 'y')`, "lpad() length"},
		{`select rpad(method, status, 'y')`, "rpad() length"},
		{`select bar(1, 0, 10, 1e9)`, "bar() width"},
		{`select printf('%1000000000d', 1)`, "format width"},
		{`select format('{:>99999999}', 1)`, "format width"},
		{`select printf(method, 1)`, "format must be a string literal"},
	}
	for _, c := range refused {
		t.Run(c.sql, func(t *testing.T) {
			_, err := SandboxSQL(c.sql, opt)
			require.ErrorContains(t, err, c.msg)
		})
	}
	allowed := []string{
		`select range(1, 1000)`,
		`select range(-5, 5, 2)`,
		`select generate_series(1000000)`,
		`select * from range(100000000)`, // streams in chunks: interruptible
		`select * from generate_series(1, 1e12) t(x) limit 3`,
		`select repeat('-', 80), lpad(method, 10, ' '), rpad(cast(status as varchar), 5, '0')`,
		`select repeat(method, 3)`,
		`select bar(status, 0, 600), bar(status, 0, 600, 40)`,
		`select printf('%5.2f %s', 1.5, method), format('{} {}', 1, 2), printf('id 12345678901 %d', 1)`,
		`select list_transform(range(1, 10), x -> x * 2)`,
	}
	for _, sql := range allowed {
		t.Run(sql, func(t *testing.T) {
			_, err := SandboxSQL(sql, opt)
			require.NoError(t, err)
		})
	}
}

func TestMaxFormatNumber(t *testing.T) {
	require.Equal(t, 10, maxFormatNumber("%10.2f and 12345"))
	require.Equal(t, 8, maxFormatNumber("{:>8} {}"))
	require.Equal(t, 0, maxFormatNumber("plain 123456789012"))
	require.Greater(t, maxFormatNumber("%99999999999d"), MaxBuiltString)
}
