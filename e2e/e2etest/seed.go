package e2etest

import (
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Seed is the seed for a test's random choices: SLUICE_E2E_SEED, to replay
// a failure, or a new one. It is logged either way.
func Seed(t testing.TB) uint64 {
	t.Helper()
	s := uint64(time.Now().UnixNano())
	if v := os.Getenv("SLUICE_E2E_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		require.NoError(t, err, "SLUICE_E2E_SEED")
		s = n
	}
	t.Logf("seed %d (replay with SLUICE_E2E_SEED=%d)", s, s)
	return s
}
