// Package verify is a Jepsen-style randomized verification suite for the
// zkrecipes locks and election (issue #5). It is test-only: the harness is
// verify_test.go, the worker process is cmd/zkverify.
//
// # Harness
//
// The orchestrator (TestVerify) starts a 3-node ZooKeeper ensemble with
// zktest on loopback with zktest.Config.PeerProxies: every server reaches
// each other server through a zktest proxy per link and port (quorum and
// election), so a server can be partitioned from the others without network
// namespaces (zktest Cluster.Isolate / IsolateLeader / Heal). It also starts
// a fenced resource (Fence, an HTTP server on 127.0.0.1),
// an observer connection (Observer) and several worker OS processes. Each
// worker reaches the ensemble through its own zktest proxy that it does not
// control, runs every workload (mutex, rwmutex, semaphore, election,
// multilock, double barrier, membership: workloads.go, barrier_wl.go,
// membership_wl.go) concurrently on one recipes.Session (a new
// session whenever one is over) and prints its history as JSON lines
// (Event): session (id and password, so the nemesis can expire it), invoke,
// ok/fail, write (with the token; the fence logs its decision too), act_end,
// lost (with cause and time), rel_invoke/rel_done.
//
// The observer lists the children of every recipe path on each watch event
// and at least every PollEvery, recording each contender node's owner session
// and czxid and when the server deleted it.
//
// Each fence resource is also a register: an accepted write sets its value,
// a read (/read, with the reader's token) returns it. The rwmutex workload
// uses it: a writer reads the value under its write lock (an exclusive read,
// which raises the fence like a write) and then writes new unique values,
// each recorded with the value it replaces; readers read it while they hold
// their read lock.
//
// # Nemesis
//
// One fault at a time, drawn from the seed, with 1–3 s of calm between:
// kill -9 and restart a server or the leader; SIGSTOP/SIGCONT a server;
// isolate the leader, or one follower, from the other servers for 2–6 s
// (all its peer links blackholed; its clients are not cut, the server
// drops them itself when it leaves the quorum; heal resets the links);
// blackhole one worker's proxy for 0.3·T, T or 2.5·T (T = 2 s session
// timeout); drop the reply to the next create of a worker; SIGSTOP a worker
// for 1.5–3·T; kill -9 a worker and start a replacement; expire a worker's
// session on the server (zktest ExpireID with the credentials it printed).
// Every step is logged with its offset and kept in schedule.txt. The
// schedule's choices are a function of the seed; the interleaving with the
// workers is not (they are real processes), so a replay repeats the faults,
// not necessarily the exact history.
//
// After the nemesis: final heal, 12 s of calm, SIGTERM to the workers (they
// release and close their sessions), then the final orphan check.
//
// # Checkers (check.go)
//
//   - stale-write: per resource the fence's accepted tokens never go
//     backwards, and every accepted write comes from a grant with that token.
//   - tokens: a grant's token is its node's czxid and the node is owned by
//     the holder's session; exclusive tokens are unique per lock; a grant
//     that returned before another acquisition was invoked has a smaller token.
//   - stale-grant: no acquisition returns a lease on a node the server had
//     already deleted.
//   - exclusion: at every grant, no two conflicting holders (mutex, multilock
//     members, election leaders, RW writers vs anyone, readers vs writers) are
//     acting. A holder acts from its grant until it stopped (act_end, lost,
//     its last write as the fence received it, or its death). A holder whose
//     process was SIGSTOPped since its grant, or whose session the nemesis
//     had the server expire since its grant, is exempt: it cannot know until
//     it hears, so only fencing stops it, which stale-write and prompt-loss
//     cover. Leaders' heartbeats are fenced
//     writes, so this is also "heartbeats of two leaders never interleave".
//   - semaphore: at most SemaphorePermits holders act at once (same exemption).
//   - prompt-loss: a holder whose node the server deleted (and that had not
//     released it) is told "lost" within Slack of the deletion being observed,
//     or within Slack of SIGCONT if it was stopped then; a holder cut off for
//     longer than T+Slack is told within T+Slack.
//   - orphans: every contender node is owned by a session a worker announced
//     and exists only during an acquisition or hold of that worker on that
//     recipe (+ 2T + 2·Slack for expiry and background cleanup); at the end,
//     after the workers exit, every recipe path is empty.
//   - liveness: every Acquire returns by its context deadline
//     (AcquireTimeout) + slack (+ time stopped), every Release by
//     ReleaseTimeout + slack, and after the final heal every workload grants
//     within Bounds.Liveness.
//   - linearizable (register.go): the history of each fenced register (the
//     rwmutex resource) is checked with porcupine against a register whose
//     writes are read-modify-writes (legal only if the register holds the
//     value the writer read), so a stale read or a lost update between two
//     writers is a violation. Reads count when accepted and answered, over
//     [send, reply]; writes count when the fence accepted them, over the
//     worker's [send, reply], or at the fence's decision if the worker had
//     no reply. Each check has RegisterTimeout (60 s); an inconclusive
//     result is not a violation but is reported as "NOT VERIFIED" in the
//     per-seed summary, never as a pass.
//   - worker-exit: a worker process that died without being killed (panic,
//     race report, with VERIFY_WORKER_RACE=1).
//   - clock: the fence records each fenced request between the worker's
//     send and its reply, within 200 µs. Otherwise that worker's clock
//     disagrees with the fence's, and every check that compares stamps of
//     two processes (exclusion above all) is unreliable: a worker whose
//     clock ran 5 ms ahead once made 126 false exclusion reports, each an
//     overlap of 0–4 ms with that worker as the first holder.
//
// # Running
//
//	go -C cmd test -race -count=1 ./zkverify/internal/verify/                      # CI: seeds 1,2,3 × 60 s of faults
//	go -C cmd test ./zkverify/internal/verify/ -run TestVerify -verify.seed=42 -verify.duration=10m -timeout 30m
//	go -C cmd test ./zkverify/internal/verify/ -run TestRecheck -verify.history=DIR  # re-run checkers on a kept run
//
// Other flags: -verify.workers (4), -verify.workloads, -verify.keep.
// VERIFY_WORKER_RACE=1 builds the worker with -race too (off by default:
// go-zookeeper v1.0.4 has a data race of its own between recvLoop and
// sendSetWatches that reconnects trigger). On a violation the
// test prints a short explanation, the seed and the replay command, and keeps
// history.jsonl, violations.jsonl, schedule.txt, the workers' stderr and the
// server logs in a directory it names.
//
// Events are stamped with the boot clock (CLOCK_BOOTTIME on Linux), which
// every process of a run reads alike, to within microseconds (package
// internal/clock measures its offset from Go's monotonic clock between two
// readings of the latter), and nobody can set: a step of the wall
// clock mid-run (NTP, a VM's clock sync) would otherwise stretch every
// interval that spans it. Messages show stamps as wall-clock times, as the
// clock stood when the test started; the workers' stderr and the server logs
// use the wall clock, so after a step they are off from the history by it.
//
// # Adding a workload
//
// Implement Workload (workloads.go), register it in Workloads and
// DefaultWorkloads. Record acquisitions with Env.Invoke, Env.Granted (one
// Member per lock) and Env.Fail; act with Hold.Act (fenced writes checking the
// lease's context) or Hold.Idle; end with Hold.Release. Kind selects the
// generic exclusion rule ("x", "w", "l" exclusive, "r" shared with readers,
// "p" counted by the workload's own Check).
//
// # Not covered (yet)
//
//   - Partitions are whole-server isolations (all links of one server);
//     asymmetric or partial partitions between servers (A↔B cut, both
//     reaching C) are not injected, though zktest's per-link proxies could.
//   - The register check covers the rwmutex resource only; the other
//     workloads' fenced writes carry no value.
//   - "Tokens follow real-time acquisition order" is checked only for
//     acquisitions that did not overlap in time (invoke after the other's grant).
//   - Liveness is checked after the final heal, not after every mid-run heal.
package verify
