package protocol_test

import (
	"testing"

	"go.uber.org/goleak"
)

// The signature tests run HTTP servers and SDK clients, and compression
// pools (de)compressors: none may leave goroutines behind.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
