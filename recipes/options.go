package recipes

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"time"

	"github.com/go-zookeeper/zk"
	"go.opentelemetry.io/otel/metric"
)

// LossPolicy says when a held lease (a lock, a permit, a leadership term)
// must be considered lost.
type LossPolicy int

const (
	// LoseOnSuspend ends every lease as soon as the connection to ZooKeeper
	// is suspended, because from then on the session may expire at any moment
	// without the client hearing of it. This is Curator's standard policy and
	// the default: a holder never acts while it cannot prove it still holds.
	LoseOnSuspend LossPolicy = iota
	// LoseOnSessionEnd keeps leases across a short disconnect. On reconnect
	// each lease re-validates itself (same session, node still present and
	// owned by it) and keeps its token. Expiry, a changed session id and the
	// local deadline still end every lease.
	LoseOnSessionEnd
)

func (p LossPolicy) String() string {
	switch p {
	case LoseOnSuspend:
		return "lose-on-suspend"
	case LoseOnSessionEnd:
		return "lose-on-session-end"
	}
	return fmt.Sprintf("LossPolicy(%d)", int(p))
}

// Option configures Connect.
type Option func(*config) error

type config struct {
	timeout          time.Duration
	logger           *slog.Logger
	authUser         string
	authPassword     string
	acl              []zk.ACL
	chroot           string
	policy           LossPolicy
	margin           time.Duration
	handshakeTimeout time.Duration
	dial             zk.Dialer
	meters           metric.MeterProvider
	failFast         bool
	serverTick       time.Duration
	tls              *tls.Config
}

// DefaultSessionTimeout is the session timeout requested when none is given.
const DefaultSessionTimeout = 10 * time.Second

// WithSessionTimeout sets the requested session timeout. The server clamps it
// to its own [minSessionTimeout, maxSessionTimeout] range; Timeout reports the
// negotiated value.
func WithSessionTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d < 100*time.Millisecond {
			return fmt.Errorf("recipes: session timeout %v is below 100ms", d)
		}
		c.timeout = d
		return nil
	}
}

// WithLogger sets the structured logger for the session and its recipes.
// The default is slog.Default().
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error {
		if l == nil {
			return fmt.Errorf("recipes: nil logger")
		}
		c.logger = l
		return nil
	}
}

// WithDigestAuth authenticates the session with ZooKeeper's digest scheme.
func WithDigestAuth(user, password string) Option {
	return func(c *config) error {
		if user == "" {
			return fmt.Errorf("recipes: digest auth needs a user name")
		}
		c.authUser, c.authPassword = user, password
		return nil
	}
}

// WithACL sets the ACL of every node the recipes create. The default is
// zk.WorldACL(zk.PermAll).
func WithACL(acl []zk.ACL) Option {
	return func(c *config) error {
		if len(acl) == 0 {
			return fmt.Errorf("recipes: empty ACL")
		}
		c.acl = acl
		return nil
	}
}

// WithChroot prefixes every recipe path with prefix (for example "/myapp"),
// so several applications can share an ensemble.
func WithChroot(prefix string) Option {
	return func(c *config) error {
		if err := ValidatePath(prefix); err != nil {
			return fmt.Errorf("recipes: chroot: %w", err)
		}
		c.chroot = prefix
		return nil
	}
}

// WithLossPolicy sets the default loss policy of the session's recipes.
func WithLossPolicy(p LossPolicy) Option {
	return func(c *config) error {
		if p != LoseOnSuspend && p != LoseOnSessionEnd {
			return fmt.Errorf("recipes: unknown loss policy %d", int(p))
		}
		c.policy = p
		return nil
	}
}

// WithSafetyMargin sets how long before the server could expire the session
// the client declares it lost on its own: the local deadline is the send
// time of the newest request proven to have reached the leader, plus the
// negotiated timeout, minus margin (see Session.Deadline). The default is a
// tenth of the negotiated timeout, at least 50ms. Connect returns an error
// if margin is 0 or not smaller than the negotiated timeout.
func WithSafetyMargin(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("recipes: safety margin must be positive, got %v", d)
		}
		c.margin = d
		return nil
	}
}

// WithServerTickTime tells the Session the servers' tickTime. A request
// answered by a follower proves that the leader heard of the session only
// once a sync sent at least a tickTime later was answered (see
// Session.Deadline); without this option the Session assumes the largest
// tickTime the server allows for the negotiated timeout, half of it, which
// keeps the deadline safe but closer. Connect returns an error if d is more
// than half the negotiated timeout.
func WithServerTickTime(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("recipes: server tickTime must be positive, got %v", d)
		}
		c.serverTick = d
		return nil
	}
}

// WithHandshakeTimeout bounds each connect handshake, so a wedged server
// costs one attempt rather than the session. The default is the session
// timeout divided by the number of servers (as the Java client does).
func WithHandshakeTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("recipes: handshake timeout %v must be positive", d)
		}
		c.handshakeTimeout = d
		return nil
	}
}

// WithDialer sets how TCP connections to servers are opened.
func WithDialer(d zk.Dialer) Option {
	return func(c *config) error {
		if d == nil {
			return fmt.Errorf("recipes: nil dialer")
		}
		c.dial = d
		return nil
	}
}

// WithMeterProvider sets the OpenTelemetry meter provider the session and
// its recipes record metrics with (docs/METRICS.md). The default is the
// global provider (otel.GetMeterProvider), a no-op until the application
// installs one.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(c *config) error {
		if mp == nil {
			return fmt.Errorf("recipes: nil meter provider")
		}
		c.meters = mp
		return nil
	}
}

// WithFailFast makes Connect give up as soon as every server has refused
// the connection (nothing listens at its address, or its host is unknown or
// unreachable) before any session was granted, with an error wrapping
// ErrUnreachable and each server's cause. Without it Connect keeps trying
// until its ctx ends, which suits servers that are still starting. A server
// that accepts the connection but does not answer is waited for either way.
func WithFailFast() Option {
	return func(c *config) error {
		c.failFast = true
		return nil
	}
}
