package mocklog

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var criLine = regexp.MustCompile(`^(\S+) (stdout|stderr) ([PF]) (.*)$`)

// unwrapCRI joins P records to their F record, as the collector must.
func unwrapCRI(t *testing.T, data []byte, stream string) []byte {
	t.Helper()
	var out bytes.Buffer
	for _, l := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		m := criLine.FindStringSubmatch(l)
		require.NotNil(t, m, "CRI record %q", l)
		_, err := time.Parse(time.RFC3339Nano, m[1])
		require.NoError(t, err)
		require.Equal(t, stream, m[2])
		out.WriteString(m[4])
		if m[3] == "F" {
			out.WriteByte('\n')
		}
	}
	return out.Bytes()
}

func unwrapDocker(t *testing.T, data []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	for _, l := range bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n")) {
		var rec struct{ Log, Stream, Time string }
		require.NoError(t, json.Unmarshal(l, &rec), string(l))
		require.Equal(t, "stdout", rec.Stream)
		_, err := time.Parse(time.RFC3339Nano, rec.Time)
		require.NoError(t, err)
		out.WriteString(rec.Log)
	}
	return out.Bytes()
}

func TestContainerFormatsCarryTheSameLines(t *testing.T) {
	for _, lt := range LogTypes() {
		for _, partial := range []int{0, 40} {
			plain, _ := generate(t, Options{LogType: lt, TotalCount: 300, FirstSeq: 1, Seed: 5})

			cri, st := generate(t, Options{LogType: lt, TotalCount: 300, FirstSeq: 1, Seed: 5, Container: ContainerCRI, Stream: "stderr", PartialBytes: partial})
			require.Equal(t, string(plain), string(unwrapCRI(t, cri, "stderr")), "%s partial=%d", lt, partial)
			require.EqualValues(t, len(cri), st.Bytes)
			if partial > 0 {
				require.Contains(t, string(cri), " stderr P ", "long lines are split")
			}

			docker, _ := generate(t, Options{LogType: lt, TotalCount: 300, FirstSeq: 1, Seed: 5, Container: ContainerDockerJSON, PartialBytes: partial})
			require.Equal(t, string(plain), string(unwrapDocker(t, docker)), "%s partial=%d", lt, partial)

			if partial == 0 {
				// ParseSeq finds the numbers inside the records too.
				for _, data := range [][]byte{cri, docker} {
					got, _ := seqs(t, data)
					requireSeqRange(t, got, 1, 300)
				}
			}
		}
	}
}

func TestAppendJSONString(t *testing.T) {
	got := appendJSONString(nil, []byte("a\"b\\c\td\x01<&>é\r\n"))
	require.Equal(t, `a\"b\\c\td\u0001\u003c\u0026\u003eé\r\n`, string(got))
	var back string
	require.NoError(t, json.Unmarshal([]byte(`"`+string(got)+`"`), &back))
	require.Equal(t, "a\"b\\c\td\x01<&>é\r\n", back)
}

func TestContainerOptionErrors(t *testing.T) {
	_, err := New(Options{LogType: LogTypeNginx, Writer: &bytes.Buffer{}, Container: "podman", Stream: "stdin"})
	require.EqualError(t, err, "container format \"podman\" is unknown: use cri or docker-json\nstream \"stdin\" is unknown: use stdout or stderr")
}
