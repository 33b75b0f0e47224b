package main

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package when a test leaves a goroutine behind: the
// stunfault servers, the page servers and Chromium's waiters must all end.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
