package folder

import "time"

// Backoff of applyRetry: the first retry, and the longest wait.
const (
	retryFirst = 2 * time.Second
	retryMax   = time.Minute
)

// applyRetry schedules the retries of the folder's own applies (at start,
// at each rescan, after a scan found remote changes waiting) that failed
// for a reason that may pass: without it such an item waited for the
// hourly rescan, while the daemon's apply loop retries the changes peers
// send within seconds. Content no peer has is not retried here (the
// daemon parks and retries it, UnavailableItems), nor items refused for
// good (KindBlocked). Owned by Run's goroutine.
type applyRetry struct {
	wait  time.Duration
	timer *time.Timer
}

// after notes the outcome of an apply and returns when it will be retried
// (0: not retried). Failures double the wait, from retryFirst up to
// retryMax; a success or nothing to retry resets it.
func (r *applyRetry) after(err error) time.Duration {
	if !retriable(err) {
		r.wait = 0
		return 0
	}
	r.wait = min(max(2*r.wait, retryFirst), retryMax)
	if r.timer == nil {
		r.timer = time.NewTimer(r.wait)
	} else {
		r.timer.Reset(r.wait)
	}
	return r.wait
}

// c fires when a retry is due; nil (never) when none is scheduled.
func (r *applyRetry) c() <-chan time.Time {
	if r.timer == nil {
		return nil
	}
	return r.timer.C
}

func (r *applyRetry) stop() {
	if r.timer != nil {
		r.timer.Stop()
	}
}

// retriable reports whether err, an Apply's error, holds a failure that a
// later try may not meet again: not only content unavailable from peers,
// refused items and what is not a failure.
func retriable(err error) bool {
	return !AwaitsNews(err)
}
