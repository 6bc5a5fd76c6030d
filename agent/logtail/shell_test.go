package logtail

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseShell(t *testing.T) {
	env := map[string]string{"DELAY": "10", "HOME": "/root", "EMPTY": ""}
	getenv := func(k string) string { return env[k] }
	f := func(script string, want []string, assign ...string) {
		t.Helper()
		c, err := parseShell(script, getenv, []string{"sh0", "first"})
		require.NoError(t, err, script)
		assert.Equal(t, want, c.argv, script)
		assert.Equal(t, assign, c.assign, script)
	}
	// The guides' command, and its usual variants.
	f("/usr/local/ilogtail/run_logtail.sh 10", []string{"/usr/local/ilogtail/run_logtail.sh", "10"})
	f("  exec /usr/local/ilogtail/run_logtail.sh $DELAY\n", []string{"/usr/local/ilogtail/run_logtail.sh", "10"})
	f("/usr/local/ilogtail/run_logtail.sh ${DELAY}", []string{"/usr/local/ilogtail/run_logtail.sh", "10"})
	f(`a 'b c' "d $HOME" e\ f "g\"h" '$HOME' x$EMPTY"" $1 ${0}`, []string{"a", "b c", "d /root", "e f", `g"h`, "$HOME", "x", "first", "sh0"})
	f("GOMAXPROCS=1 A='x y' /sluice-agent status # probe", []string{"/sluice-agent", "status"}, "GOMAXPROCS=1", "A=x y")
	f("# comment\n/sluice-agent status\n\n", []string{"/sluice-agent", "status"})
	f("/sluice-agent \\\n  status", []string{"/sluice-agent", "status"})
	f("echo 价格 '日志'", []string{"echo", "价格", "日志"})
	f("cost=$ 5", []string{"5"}, "cost=$")
}

func TestParseShellRefuses(t *testing.T) {
	for script, want := range map[string]string{
		"a; b":            "a command list (;)",
		"a && b":          "& or &&",
		"a | b":           "a pipe or ||",
		"a > /tmp/x":      "redirection",
		"a $(b)":          "command substitution $(…)",
		"a `b`":           "command substitution `…`",
		`a "$(b)"`:        "command substitution $(…)",
		"a\nb":            "a second command on a new line",
		"a 'b":            "unterminated '",
		`a "b`:            `unterminated "`,
		"a $@":            "special parameter $@",
		"A=1":             "names no command",
		"":                "names no command",
		"a ${B:-default}": "${B:-default}",
	} {
		_, err := parseShell(script, func(string) string { return "" }, nil)
		require.ErrorIs(t, err, errShellSyntax, script)
		assert.ErrorContains(t, err, want, script)
	}
}
