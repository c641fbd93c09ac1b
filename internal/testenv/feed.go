package testenv

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

// Patience bounds every wait of the fan-out tests. It is generous on
// purpose: the tests never pass or fail on how fast something happens, only
// on whether it happens at all.
const Patience = 5 * time.Second

// Feed is a synthetic source for fan-out tests (a fanout.Source[T]): the
// test hands it items one at a time and sees every Run start and end.
type Feed[T any] struct {
	Started chan int32 // the number of each Run, as it starts
	Ended   chan int32 // the number of each Run, as it returns
	First   func() T   // if set before the first Run, emitted as soon as each Run starts

	q    chan feedItem[T]
	runs atomic.Int32
}

// feedItem is one item handed to a feed, and a channel closed once emit returned.
type feedItem[T any] struct {
	v    T
	done chan struct{}
}

// NewFeed returns a feed with room for 16 pushed items and 64 Runs.
func NewFeed[T any]() *Feed[T] {
	return &Feed[T]{q: make(chan feedItem[T], 16), Started: make(chan int32, 64), Ended: make(chan int32, 64)}
}

// Run emits First, if set, then every pushed item, until ctx ends.
func (fd *Feed[T]) Run(ctx context.Context, emit func(T)) error {
	n := fd.runs.Add(1)
	fd.Started <- n
	defer func() { fd.Ended <- n }()
	if fd.First != nil {
		emit(fd.First())
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case it := <-fd.q:
			emit(it.v)
			close(it.done)
		}
	}
}

// Runs returns how many times Run has started.
func (fd *Feed[T]) Runs() int32 { return fd.runs.Load() }

// Push queues v for the running (or next) Run; the channel closes once the
// hub's emit has returned for it.
func (fd *Feed[T]) Push(v T) <-chan struct{} {
	it := feedItem[T]{v: v, done: make(chan struct{})}
	fd.q <- it
	return it.done
}

// Emit hands v to the running source and waits until it has been published.
func (fd *Feed[T]) Emit(t testing.TB, v T) {
	t.Helper()
	select {
	case <-fd.Push(v):
	case <-time.After(Patience):
		t.Fatalf("emit of %v did not return within %v: is the source running, or did the producer block?", v, Patience)
	}
}

// WaitRun receives one Run number from ch (a Feed's Started or Ended) and checks it is want.
func WaitRun(t testing.TB, ch <-chan int32, want int32, what string) {
	t.Helper()
	select {
	case got := <-ch:
		if got != want {
			t.Fatalf("%s: got run %d, want run %d", what, got, want)
		}
	case <-time.After(Patience):
		t.Fatalf("%s: run %d did not happen within %v", what, want, Patience)
	}
}

// NothingOn checks that ch has nothing ready right now.
func NothingOn[T any](t testing.TB, ch <-chan T, what string) {
	t.Helper()
	select {
	case v := <-ch:
		t.Fatalf("%s: unexpected %v", what, v)
	default:
	}
}

// Eventually polls cond until it holds, failing after Patience.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(Patience)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not true within %v", what, Patience)
		}
		time.Sleep(time.Millisecond)
	}
}
