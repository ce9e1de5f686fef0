package bot

import "sync"

// RefNotifier is the bookkeeping behind Resumable.OnRef for adapters: Set
// records the platform reference of a reply's first message whenever it
// becomes known or changes (the message was replaced), and calls every
// function registered with OnRef. Functions are called without a lock held.
// The zero value is ready to use.
type RefNotifier struct {
	mu  sync.Mutex
	ref string
	fns []func(ref string)
}

// OnRef registers fn; it is called at once when a reference is known, and
// again whenever Set changes it.
func (n *RefNotifier) OnRef(fn func(ref string)) {
	n.mu.Lock()
	n.fns = append(n.fns, fn)
	ref := n.ref
	n.mu.Unlock()
	if ref != "" {
		fn(ref)
	}
}

// Set records ref and tells the registered functions when it changed. An
// empty ref is ignored: a reply's message, once it existed, is not forgotten.
func (n *RefNotifier) Set(ref string) {
	n.mu.Lock()
	if ref == "" || ref == n.ref {
		n.mu.Unlock()
		return
	}
	n.ref = ref
	fns := append([]func(string){}, n.fns...)
	n.mu.Unlock()
	for _, fn := range fns {
		fn(ref)
	}
}

// Ref returns the reference recorded last ("" if none).
func (n *RefNotifier) Ref() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.ref
}
