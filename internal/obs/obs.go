// Package obs holds the OpenTelemetry instruments of zkrecipes. They come
// from the Session's meter provider (the global one unless the application
// gives another), so they cost nothing until the application installs a
// provider. docs/METRICS.md lists every instrument.
package obs

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/go-zookeeper/zk"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Meter name of zkrecipes' instruments.
const Scope = "github.com/zkrecipes/zkrecipes"

// Observer records zkrecipes' metrics. The zero value and nil record nothing.
type Observer struct {
	acquireWait   metric.Float64Histogram
	holdTime      metric.Float64Histogram
	acquisitions  metric.Int64Counter
	releases      metric.Int64Counter
	lost          metric.Int64Counter
	cleanups      metric.Int64Counter
	transitions   metric.Int64Counter
	suspended     metric.Float64Histogram
	leaderChanges metric.Int64Counter
	closes        metric.Int64Counter
}

// New creates the instruments on mp's meter.
func New(mp metric.MeterProvider) *Observer {
	m := mp.Meter(Scope)
	o := &Observer{}
	secs := []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300}
	// Instrument creation fails only for invalid names (a bug caught by the
	// tests); the returned instrument is then a no-op, so errors are dropped.
	o.acquireWait, _ = m.Float64Histogram("zkrecipes.acquire.wait", metric.WithUnit("s"),
		metric.WithDescription("Time from an acquisition call (Acquire, AcquireRead, TryAcquire, election Acquire) to its return, by recipe and outcome."),
		metric.WithExplicitBucketBoundaries(secs...))
	o.holdTime, _ = m.Float64Histogram("zkrecipes.hold.duration", metric.WithUnit("s"),
		metric.WithDescription("Time a lease or term was held, from grant to release or loss, by recipe and how it ended."),
		metric.WithExplicitBucketBoundaries(secs...))
	o.acquisitions, _ = m.Int64Counter("zkrecipes.acquisitions", metric.WithUnit("{call}"),
		metric.WithDescription("Acquisition calls by recipe and outcome (granted, locked, canceled, session_lost, error)."))
	o.releases, _ = m.Int64Counter("zkrecipes.releases", metric.WithUnit("{call}"),
		metric.WithDescription("Release calls by recipe and outcome (released, failed: the delete goes on in the background, background_done)."))
	o.lost, _ = m.Int64Counter("zkrecipes.leases.lost", metric.WithUnit("{lease}"),
		metric.WithDescription("Leases and terms lost without release, by recipe and cause."))
	o.cleanups, _ = m.Int64Counter("zkrecipes.cleanup.nodes", metric.WithUnit("{node}"),
		metric.WithDescription("Contender nodes deleted by cleanup rather than by Release, by reason (discarded, abandoned, lost_reply, after_loss) and outcome."))
	o.transitions, _ = m.Int64Counter("zkrecipes.session.transitions", metric.WithUnit("{transition}"),
		metric.WithDescription("Session state changes, by the state entered (connected, suspended, reconnected, lost) and, for lost, the cause."))
	o.suspended, _ = m.Float64Histogram("zkrecipes.session.suspended.duration", metric.WithUnit("s"),
		metric.WithDescription("Time a session spent suspended, by how the suspension ended (reconnected, lost)."),
		metric.WithExplicitBucketBoundaries(secs...))
	o.leaderChanges, _ = m.Int64Counter("zkrecipes.election.leadership", metric.WithUnit("{change}"),
		metric.WithDescription("Leadership changes seen by a candidate: elected, lost, resigned."))
	o.closes, _ = m.Int64Counter("zkrecipes.session.closes", metric.WithUnit("{session}"),
		metric.WithDescription("Sessions ended by the client while the server may still hold them, by how the server heard of it (acknowledged, resent, already_over, failed)."))
	return o
}

// Closed records how the server heard of a session the client ended:
// "acknowledged" (the close request was answered), "resent" (answered on a
// connection of its own), "already_over" (the server had ended it),
// "failed" (not confirmed: the server expires it).
func (o *Observer) Closed(outcome string) {
	if !o.on() {
		return
	}
	o.closes.Add(context.Background(), 1, attrs("outcome", outcome).add...)
}

func (o *Observer) on() bool { return o != nil && o.acquisitions != nil }

// attrSets caches the attribute options of each label combination, so
// recording builds no attribute set, and no option slice, on the hot path.
var attrSets struct {
	sync.RWMutex
	m map[[4]string]labels
}

// labels are one label combination's options, as Add and Record take them.
type labels struct {
	add []metric.AddOption
	rec []metric.RecordOption
}

// attrs returns the options for up to two key, value pairs.
func attrs(kv ...string) labels {
	var key [4]string
	copy(key[:], kv)
	attrSets.RLock()
	l, ok := attrSets.m[key]
	attrSets.RUnlock()
	if ok {
		return l
	}
	list := make([]attribute.KeyValue, 0, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		list = append(list, attribute.String(kv[i], kv[i+1]))
	}
	o := metric.WithAttributeSet(attribute.NewSet(list...))
	l = labels{add: []metric.AddOption{o}, rec: []metric.RecordOption{o}}
	attrSets.Lock()
	if attrSets.m == nil {
		attrSets.m = make(map[[4]string]labels)
	}
	attrSets.m[key] = l
	attrSets.Unlock()
	return l
}

// Acquired records the end of an acquisition call that started at start.
func (o *Observer) Acquired(recipe string, start time.Time, err error, locked, canceled error) {
	if !o.on() {
		return
	}
	outcome := "granted"
	switch {
	case err == nil:
	case errors.Is(err, locked) && locked != nil:
		outcome = "locked"
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || (canceled != nil && errors.Is(err, canceled)):
		outcome = "canceled"
	case Cause(err) != "other":
		outcome = "session_lost"
	default:
		outcome = "error"
	}
	a := attrs("recipe", recipe, "outcome", outcome)
	ctx := context.Background()
	o.acquisitions.Add(ctx, 1, a.add...)
	o.acquireWait.Record(ctx, time.Since(start).Seconds(), a.rec...)
}

// Ended records the end of a hold that was granted at granted: released
// (cause nil) or lost with cause.
func (o *Observer) Ended(recipe string, granted time.Time, cause error) {
	if !o.on() {
		return
	}
	ctx := context.Background()
	how := "released"
	if cause != nil {
		how = "lost"
		why := Cause(cause)
		if why == "max_hold" {
			how = why // ended by its maximum hold time: not lost
		} else {
			o.lost.Add(ctx, 1, attrs("recipe", recipe, "cause", why).add...)
		}
	}
	o.holdTime.Record(ctx, time.Since(granted).Seconds(), attrs("recipe", recipe, "end", how).rec...)
}

// Released records a Release call's outcome.
func (o *Observer) Released(recipe, outcome string) {
	if !o.on() {
		return
	}
	o.releases.Add(context.Background(), 1, attrs("recipe", recipe, "outcome", outcome).add...)
}

// Cleaned records a contender node deleted (or not) by cleanup.
func (o *Observer) Cleaned(reason string, err error) {
	if !o.on() {
		return
	}
	outcome := "deleted"
	if err != nil {
		outcome = "failed"
	}
	o.cleanups.Add(context.Background(), 1, attrs("reason", reason, "outcome", outcome).add...)
}

// Transition records a session state change; suspendedFor is how long the
// session had been suspended (0 if it was not).
func (o *Observer) Transition(state string, cause error, suspendedFor time.Duration) {
	if !o.on() {
		return
	}
	ctx := context.Background()
	if cause != nil {
		o.transitions.Add(ctx, 1, attrs("state", state, "cause", Cause(cause)).add...)
	} else {
		o.transitions.Add(ctx, 1, attrs("state", state).add...)
	}
	if suspendedFor > 0 {
		o.suspended.Record(ctx, suspendedFor.Seconds(), attrs("end", state).rec...)
	}
}

// Leadership records a leadership change: elected, lost or resigned.
func (o *Observer) Leadership(event string) {
	if !o.on() {
		return
	}
	o.leaderChanges.Add(context.Background(), 1, attrs("event", event).add...)
}

// Causes a loss can be attributed to. They are matched by their messages'
// sentinels through errors.Is by the callers' sentinels registered here.
var causes []struct {
	err  error
	name string
}

// RegisterCause maps a sentinel error to a cause label. Packages register
// their sentinels at init.
func RegisterCause(err error, name string) {
	causes = append(causes, struct {
		err  error
		name string
	}{err, name})
}

// Cause names the cause of a loss for a metric label.
func Cause(err error) string {
	for _, c := range causes {
		if errors.Is(err, c.err) {
			return c.name
		}
	}
	if errors.Is(err, zk.ErrSessionExpired) {
		return "expired"
	}
	return "other"
}
