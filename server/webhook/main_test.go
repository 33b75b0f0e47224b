package webhook_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package when a test leaves a goroutine behind: held
// requests and pending timers must end with the test.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
