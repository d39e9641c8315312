package fence

import (
	"context"
	"sync"

	"github.com/zkrecipes/zkrecipes/recipes"
)

// Memory is a Checker that keeps the highest tokens in process memory: for a
// service that guards its own in-memory (or otherwise process-local) state,
// or that is the only writer to a store. The zero value is ready to use; a
// Memory must not be copied after first use. It is safe for concurrent use.
//
// It forgets everything when the process ends: a restarted service must
// start from the highest tokens it had accepted (Set restores them), or it
// would accept a stale holder again. Entries are never dropped, so memory
// grows with the number of distinct resources.
type Memory struct {
	mu  sync.Mutex
	res map[string]*memEntry

	onAccept func(resource string, tok recipes.Token) // tests: called under the resource's lock
}

type memEntry struct {
	mu      sync.Mutex // held while a check, and the write under it, runs
	highest recipes.Token
}

var _ Checker = (*Memory)(nil)

func (m *Memory) entry(resource string, create bool) *memEntry {
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.res[resource]
	if e == nil && create {
		if m.res == nil {
			m.res = make(map[string]*memEntry)
		}
		e = &memEntry{}
		m.res[resource] = e
	}
	return e
}

// Accept implements Checker. It returns ctx's cause if ctx is already done,
// and otherwise never fails except for invalid arguments or a stale token.
// It waits while a Do on the same resource runs.
func (m *Memory) Accept(ctx context.Context, resource string, tok recipes.Token) error {
	if err := context.Cause(ctx); err != nil {
		return err
	}
	return m.Do(resource, tok, nil)
}

// Do runs write under the check, atomically within this process: it locks
// resource, checks tok as Accept does, and, if tok is not stale, records it
// and runs write while still holding the lock, then unlocks. So no other
// Do or Accept on the same resource runs between the check and the end of
// write: a write guarded by Do can never be overtaken by the write of an
// older token, and a stale holder's write never runs (Do returns a
// *StaleError without calling it). Writes to one resource are serialised;
// writes to different resources run in parallel.
//
// tok is recorded before write runs and stays recorded if write fails or
// panics (the panic propagates, the lock is released): a newer holder that
// tried to write has fenced off the older ones either way. Do returns
// write's error. write must not call Do or Accept on the same resource (it
// would deadlock). A nil write only checks and records, as Accept.
func (m *Memory) Do(resource string, tok recipes.Token, write func() error) error {
	return m.do(resource, tok, nil, write)
}

// DoHeld is Do with holder's token that also refuses a holder that is no
// longer held: under resource's lock, right before the token check, it
// calls holder.Err, and if that is not nil it records nothing, does not
// call write and returns a *NotHeldError wrapping ErrNotHeld and holder's
// Err (so errors.Is(err, lock.ErrLost) holds for a lost lock.Lease).
func (m *Memory) DoHeld(resource string, holder Holder, write func() error) error {
	if _, err := held(resource, holder); err != nil {
		return err
	}
	return m.do(resource, holder.Token(), holder, write)
}

func (m *Memory) do(resource string, tok recipes.Token, holder Holder, write func() error) error {
	if err := checkArgs(resource, tok); err != nil {
		return err
	}
	e := m.entry(resource, true)
	e.mu.Lock()
	defer e.mu.Unlock()
	if holder != nil {
		// Checked again under the lock: Do on the same resource may have
		// kept us waiting for as long as its write ran.
		if _, err := held(resource, holder); err != nil {
			return err
		}
	}
	if tok < e.highest {
		return stale(resource, tok, e.highest)
	}
	e.highest = tok
	if m.onAccept != nil {
		m.onAccept(resource, tok)
	}
	if write == nil {
		return nil
	}
	return write()
}

// Highest implements Checker. It never fails except for ctx being done.
func (m *Memory) Highest(ctx context.Context, resource string) (recipes.Token, error) {
	if err := context.Cause(ctx); err != nil {
		return 0, err
	}
	e := m.entry(resource, false)
	if e == nil {
		return 0, nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.highest, nil
}

// Set raises the highest token recorded for resource to tok (it never
// lowers it), for a service that restores its state after a restart.
func (m *Memory) Set(resource string, tok recipes.Token) {
	e := m.entry(resource, true)
	e.mu.Lock()
	defer e.mu.Unlock()
	e.highest = max(e.highest, tok)
}
