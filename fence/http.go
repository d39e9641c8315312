package fence

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/zkrecipes/zkrecipes/recipes"
)

// Header is the HTTP header that carries a fencing token: its value is the
// token's decimal text form (recipes.Token.String), for example
// "Fencing-Token: 4294967300".
const Header = "Fencing-Token"

// SetHeader sets the Header of h to tok, for a client sending a fenced
// request. SetHeaderHeld and Transport also check that the lease is still
// held.
func SetHeader(h http.Header, tok recipes.Token) { h.Set(Header, tok.String()) }

// SetHeaderHeld sets the Header of hdr to holder's token if holder is still
// held (see Held). Otherwise it removes the Header from hdr, so that a
// request sent anyway carries no token (a fenced server answers 428), and
// returns a *NotHeldError wrapping ErrNotHeld and holder's Err.
//
// The check happens when the header is set: call it right before sending
// the request, or use Transport, which checks at every round trip. A nil
// hdr is an error.
func SetHeaderHeld(hdr http.Header, holder Holder) error {
	if hdr == nil {
		return errors.New("fence: SetHeaderHeld: nil http.Header")
	}
	tok, err := held("", holder)
	if err != nil {
		hdr.Del(Header)
		return err
	}
	SetHeader(hdr, tok)
	return nil
}

// Transport is an http.RoundTripper that sends Holder's token in the Header
// of every request, checking right before each round trip that Holder is
// still held (each redirect an http.Client follows is a round trip; a
// retry Base makes itself on a broken connection is not checked again).
// When it is not, the request is not sent: RoundTrip returns a
// *NotHeldError wrapping ErrNotHeld and Holder's Err (http.Client wraps it
// in a *url.Error; errors.Is sees through both). The request given is not
// modified; a copy with the header is sent through Base
// (http.DefaultTransport if nil).
//
//	client := &http.Client{Transport: &fence.Transport{Holder: lease}}
//
// Use one Transport per lease; it is safe for concurrent use.
type Transport struct {
	Holder Holder
	Base   http.RoundTripper
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(r *http.Request) (*http.Response, error) {
	tok, err := held("", t.Holder)
	if err != nil {
		if r.Body != nil {
			r.Body.Close() // a RoundTripper closes the body, even on errors
		}
		return nil, err
	}
	r2 := r.Clone(r.Context())
	if r2.Header == nil {
		r2.Header = make(http.Header)
	}
	SetHeader(r2.Header, tok)
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	return base.RoundTrip(r2)
}

// FromHeader reads the token in h. It returns ok false (and no error) if
// the header is absent, and an error wrapping ErrInvalidToken if it is
// present but is not exactly one positive decimal token.
func FromHeader(h http.Header) (tok recipes.Token, ok bool, err error) {
	vals := h.Values(Header)
	switch len(vals) {
	case 0:
		return 0, false, nil
	case 1:
	default:
		return 0, true, fmt.Errorf("%w: %d %s headers", ErrInvalidToken, len(vals), Header)
	}
	tok, err = recipes.ParseToken(strings.TrimSpace(vals[0]))
	if err != nil {
		return 0, true, fmt.Errorf("%w: %s: %q", ErrInvalidToken, Header, vals[0])
	}
	return tok, true, nil
}

type tokenKey struct{}

// TokenFrom returns the token that Middleware accepted for the request
// whose context is ctx, so a handler can pass it on (to Postgres.InTx, to a
// downstream service with SetHeader).
func TokenFrom(ctx context.Context) (recipes.Token, bool) {
	tok, ok := ctx.Value(tokenKey{}).(recipes.Token)
	return tok, ok
}

// doer is a checker that can run a write under its check (Memory).
type doer interface {
	Do(resource string, tok recipes.Token, write func() error) error
}

// Middleware fences HTTP requests. For each request it asks resourceOf
// which resource the request writes; "" means the request is not fenced
// (reads, for example) and it is passed on untouched. For a fenced request
// it reads the token from the Header and answers, without calling the next
// handler:
//
//   - 428 Precondition Required if the header is missing;
//   - 400 Bad Request if it is malformed (see FromHeader);
//   - 409 Conflict if the token is stale: older than one already accepted
//     for the resource (the body names both tokens);
//   - 503 Service Unavailable if the checker failed otherwise (its store is
//     unreachable, the request's context ended, ...).
//
// Otherwise the token is accepted (recorded as the resource's highest if it
// is larger) and the next handler runs, with the token in the request's
// context (TokenFrom).
//
// How strong this is depends on the checker. With a *Memory (anything with
// its Do method) the next handler runs inside Memory.Do: the check and the
// whole handler are atomic with respect to other fenced requests on the
// same resource, which are serialised, so a stale request can never write
// after a newer one; a newer token that arrives while a handler runs waits
// for it. With any other checker the middleware only calls Accept before
// the handler: it turns away holders that are already known to be stale,
// but a stale request admitted just before a newer one may still reach the
// store after it. Such handlers must make the write itself conditional on
// the token, for example with Postgres.InTx and the token from TokenFrom.
func Middleware(c Checker, resourceOf func(*http.Request) string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			resource := resourceOf(r)
			if resource == "" {
				next.ServeHTTP(w, r)
				return
			}
			tok, ok, err := FromHeader(r.Header)
			switch {
			case err != nil:
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			case !ok:
				http.Error(w, fmt.Sprintf("fence: %s header required to write %q", Header, resource), http.StatusPreconditionRequired)
				return
			}
			r = r.WithContext(context.WithValue(r.Context(), tokenKey{}, tok))
			ran := false
			if d, isDoer := c.(doer); isDoer {
				err = d.Do(resource, tok, func() error {
					ran = true
					next.ServeHTTP(w, r)
					return nil
				})
			} else {
				err = c.Accept(r.Context(), resource, tok)
			}
			switch {
			case err == nil:
				if !ran {
					next.ServeHTTP(w, r)
				}
			case errors.Is(err, ErrStale):
				http.Error(w, err.Error(), http.StatusConflict)
			case errors.Is(err, ErrInvalidToken):
				http.Error(w, err.Error(), http.StatusBadRequest)
			default:
				http.Error(w, err.Error(), http.StatusServiceUnavailable)
			}
		})
	}
}
