package webhook

import (
	"math"
	"time"

	"golang.org/x/time/rate"
)

// bucket is a webhook's rate limit: a token bucket given the Hub Clock's
// time on every request, so it runs on that clock. The zero value is
// unlimited. It is safe for concurrent use.
type bucket struct {
	lim *rate.Limiter // nil: no limit
}

// newBucket returns a full bucket for rate requests per second with a burst
// of ceil(rate), at least 1. A rate of 0 or less means no limit.
func newBucket(perSecond float64) bucket {
	if perSecond <= 0 {
		return bucket{}
	}
	burst := max(1, int(math.Ceil(perSecond)))
	return bucket{lim: rate.NewLimiter(rate.Limit(perSecond), burst)}
}

// take spends one token at now. When none is left it reports false and how
// long until one will be: the Retry-After.
func (b *bucket) take(now time.Time) (ok bool, wait time.Duration) {
	if b.lim == nil || b.lim.AllowN(now, 1) {
		return true, 0
	}
	missing := 1 - b.lim.TokensAt(now)
	return false, time.Duration(missing / float64(b.lim.Limit()) * float64(time.Second))
}

// retryAfter is wait in whole seconds, rounded up, at least 1 (RFC 9110
// section 10.2.3: Retry-After is a whole number of seconds).
func retryAfter(wait time.Duration) int {
	s := int(math.Ceil(wait.Seconds()))
	return max(s, 1)
}
