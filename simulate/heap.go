package simulate

// idxHeap is a binary min-heap of indices ordered by key(index), ties by
// index, so that pop order is deterministic.
type idxHeap struct {
	items []int32
	key   func(int32) int64
}

func (h *idxHeap) len() int   { return len(h.items) }
func (h *idxHeap) top() int32 { return h.items[0] }
func (h *idxHeap) less(a, b int32) bool {
	ka, kb := h.key(a), h.key(b)
	return ka < kb || ka == kb && a < b
}

func (h *idxHeap) push(i int32) {
	h.items = append(h.items, i)
	j := len(h.items) - 1
	for j > 0 {
		p := (j - 1) / 2
		if !h.less(h.items[j], h.items[p]) {
			break
		}
		h.items[j], h.items[p] = h.items[p], h.items[j]
		j = p
	}
}

func (h *idxHeap) pop() int32 {
	top := h.items[0]
	last := len(h.items) - 1
	h.items[0] = h.items[last]
	h.items = h.items[:last]
	j := 0
	for {
		l, m := 2*j+1, j
		if l < last && h.less(h.items[l], h.items[m]) {
			m = l
		}
		if l+1 < last && h.less(h.items[l+1], h.items[m]) {
			m = l + 1
		}
		if m == j {
			break
		}
		h.items[j], h.items[m] = h.items[m], h.items[j]
		j = m
	}
	return top
}

// selectFirst reorders s so that its first k elements are the k least by
// less (a strict total order), in no particular order: a quickselect with
// a deterministic median-of-three pivot.
func selectFirst(s []int32, k int, less func(a, b int32) bool) {
	lo, hi := 0, len(s)-1
	for lo < hi {
		mid := lo + (hi-lo)/2
		if less(s[mid], s[lo]) {
			s[mid], s[lo] = s[lo], s[mid]
		}
		if less(s[hi], s[lo]) {
			s[hi], s[lo] = s[lo], s[hi]
		}
		if less(s[hi], s[mid]) {
			s[hi], s[mid] = s[mid], s[hi]
		}
		pivot := s[mid]
		i, j := lo, hi
		for i <= j {
			for less(s[i], pivot) {
				i++
			}
			for less(pivot, s[j]) {
				j--
			}
			if i <= j {
				s[i], s[j] = s[j], s[i]
				i++
				j--
			}
		}
		switch {
		case k-1 <= j:
			hi = j
		case k-1 >= i:
			lo = i
		default:
			return
		}
	}
}
