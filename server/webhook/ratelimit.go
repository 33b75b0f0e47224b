package webhook

import (
	"math"
	"time"
)

// bucket is a token bucket driven by the times it is given, so it runs on the
// Hub's Clock. The zero value is unlimited. It is not safe for concurrent use:
// its hook's mutex guards it.
type bucket struct {
	rate   float64 // tokens per second; 0 = no limit
	burst  float64
	tokens float64
	last   time.Time
}

// newBucket returns a full bucket for rate requests per second with a burst
// of ceil(rate), at least 1.
func newBucket(rate float64) bucket {
	if rate <= 0 {
		return bucket{}
	}
	burst := math.Max(1, math.Ceil(rate))
	return bucket{rate: rate, burst: burst, tokens: burst}
}

// take spends one token at now. When none is left it reports false and how
// long until one will be: the Retry-After.
func (b *bucket) take(now time.Time) (ok bool, wait time.Duration) {
	if b.rate <= 0 {
		return true, 0
	}
	if !b.last.IsZero() && now.After(b.last) {
		b.tokens = math.Min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	}
	if b.last.IsZero() || now.After(b.last) {
		b.last = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	return false, time.Duration((1 - b.tokens) / b.rate * float64(time.Second))
}

// retryAfter is wait in whole seconds, rounded up, at least 1 (RFC 9110
// section 10.2.3: Retry-After is a whole number of seconds).
func retryAfter(wait time.Duration) int {
	s := int(math.Ceil(wait.Seconds()))
	return max(s, 1)
}
