package main

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package when a test leaves a goroutine behind: the
// stunfault servers, the page servers and Chromium's waiters must all end.
// Started by a test as the stunfault of a network namespace (see
// netns_linux_test.go), the binary runs that server instead of the tests.
func TestMain(m *testing.M) {
	runNetnsServerIfAsked()
	goleak.VerifyTestMain(m)
}
