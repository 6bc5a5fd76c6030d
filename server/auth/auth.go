// Package auth authenticates Log Service API requests against the access
// keys in the metadata store and authorizes them per project. Signature
// checks (v1 HMAC-SHA1, v4 SLS4-HMAC-SHA256, Content-MD5 / content SHA-256,
// clock skew) are protocol's; this package adds the key lookup, project
// permissions and the bootstrap of the first admin key.
package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/sluicelog/sluice/protocol"
	"github.com/sluicelog/sluice/server/meta"
)

// Keys looks access keys up (meta.Store satisfies it).
type Keys interface {
	GetAccessKey(ctx context.Context, id string) (meta.AccessKey, error)
}

// Authenticator verifies request signatures.
type Authenticator struct {
	keys    Keys
	now     func() time.Time
	maxSkew time.Duration
}

// Options tune an Authenticator; the zero value is the Log Service
// behaviour.
type Options struct {
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// MaxClockSkew is how far a request's date may be from Now
	// (protocol.MaxClockSkew, 15 minutes, when 0).
	MaxClockSkew time.Duration
}

// New returns an Authenticator reading keys from keys.
func New(keys Keys, opts Options) *Authenticator {
	a := &Authenticator{keys: keys, now: opts.Now, maxSkew: opts.MaxClockSkew}
	if a.now == nil {
		a.now = time.Now
	}
	if a.maxSkew <= 0 {
		a.maxSkew = protocol.MaxClockSkew
	}
	return a
}

// Authenticate verifies r, whose body as received (still compressed) is
// body, and returns the key that signed it: AuthenticateHeaders, then
// CheckBody. Errors are *protocol.Error (401 Unauthorized /
// SignatureNotMatch, 400 MissingDate / InvalidDateFormat /
// RequestTimeExpired) except for metadata failures, which are returned
// wrapped (and become 500).
func (a *Authenticator) Authenticate(r *http.Request, body []byte) (meta.AccessKey, error) {
	key, err := a.AuthenticateHeaders(r)
	if err != nil {
		return meta.AccessKey{}, err
	}
	if err := CheckBody(r, body); err != nil {
		return meta.AccessKey{}, err
	}
	return key, nil
}

// AuthenticateHeaders verifies r's signature and date from its headers
// alone and returns the key that signed it, so a server reads the body
// of signed requests only; CheckBody then checks the body against the
// digest the signature covers. An unknown key id is refused exactly as
// a wrong secret (SignatureNotMatch).
func (a *Authenticator) AuthenticateHeaders(r *http.Request) (meta.AccessKey, error) {
	if r.Header.Get(protocol.HeaderAuthorization) == "" {
		return meta.AccessKey{}, protocol.NewError(protocol.CodeUnauthorized,
			"missing Authorization header: sign the request with an access key (LOG <AccessKeyId>:<Signature> or SLS4-HMAC-SHA256)")
	}
	if err := protocol.CheckClockSkew(r.Header, a.now(), a.maxSkew); err != nil {
		return meta.AccessKey{}, err
	}
	var key meta.AccessKey
	lookup := func(ctx context.Context, id string) (string, error) {
		k, err := a.keys.GetAccessKey(ctx, id)
		if errors.Is(err, meta.ErrNotFound) {
			return "", fmt.Errorf("%w: %q", protocol.ErrUnknownAccessKey, id)
		}
		if err != nil {
			return "", err
		}
		key = k
		return k.Secret, nil
	}
	if _, err := protocol.VerifyHeaders(r.Context(), r, lookup); err != nil {
		return meta.AccessKey{}, err
	}
	return key, nil
}

// CheckBody is the package's CheckBody, for the API's Authenticator
// interface.
func (a *Authenticator) CheckBody(r *http.Request, body []byte) error { return CheckBody(r, body) }

// CheckBody checks a request's body (as received) against the digest
// header its verified signature covers.
func CheckBody(r *http.Request, body []byte) error {
	v := protocol.SignatureV1
	if strings.HasPrefix(r.Header.Get(protocol.HeaderAuthorization), protocol.AuthSchemeV4+" ") {
		v = protocol.SignatureV4
	}
	return protocol.CheckBody(r.Header, v, body)
}

// Authorize returns nil when key may do an action needing perm in project,
// else a 401 Unauthorized *protocol.Error. An empty project means an action
// outside any project (listing or creating projects, managing keys), which
// only admin keys may do.
func Authorize(key meta.AccessKey, project string, perm meta.Permission) error {
	if key.Admin {
		return nil
	}
	if project == "" {
		return protocol.Errorf(protocol.CodeUnauthorized,
			"access key %q is not an admin key: only admin keys may list or create projects or manage keys", key.ID)
	}
	if !key.Allows(project, perm) {
		return protocol.Errorf(protocol.CodeUnauthorized,
			"access key %q has no %s permission on project %q: grant it with `sluice-server keys grant`", key.ID, perm, project)
	}
	return nil
}
