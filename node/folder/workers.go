package folder

import (
	"context"
	"sync"
)

// eachOn runs do for every element of items on up to n goroutines, handing
// them out in order, and returns when every call has returned. Once ctx is
// done no further element is handed out (the calls running finish);
// whether ctx ended early is the caller's to check.
func eachOn[T any](ctx context.Context, n int, items []T, do func(T)) {
	next := make(chan T)
	var wg sync.WaitGroup
	for range min(n, len(items)) {
		wg.Go(func() {
			for it := range next {
				do(it)
			}
		})
	}
feed:
	for _, it := range items {
		if ctx.Err() != nil {
			break // a done ctx first: select would pick at random
		}
		select {
		case next <- it:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
}
