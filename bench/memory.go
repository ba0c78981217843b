package bench

import (
	"runtime"
	"runtime/metrics"
	"sync"
	"time"
)

// heapMetric is the bytes of heap memory occupied by objects (live and not
// yet swept); reading it does not stop the world.
const heapMetric = "/memory/classes/heap/objects:bytes"

// heapWatch records the peak heap while a phase runs.
type heapWatch struct {
	stop chan struct{}
	wg   sync.WaitGroup
	peak uint64
}

// watchHeap collects garbage (so the phase starts from what is live) and
// samples the heap every 20 ms until stopMB is called.
func watchHeap() *heapWatch {
	runtime.GC()
	h := &heapWatch{stop: make(chan struct{})}
	h.peak = readHeap()
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-h.stop:
				return
			case <-t.C:
				h.peak = max(h.peak, readHeap())
			}
		}
	}()
	return h
}

// stopMB ends the sampling and returns the peak in MB.
func (h *heapWatch) stopMB() float64 {
	close(h.stop)
	h.wg.Wait()
	h.peak = max(h.peak, readHeap())
	return float64(h.peak) / (1 << 20)
}

func readHeap() uint64 {
	s := []metrics.Sample{{Name: heapMetric}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}
