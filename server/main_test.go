package server_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package when any test leaves a goroutine behind:
// Close must release everything it started, pion's loops included.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
