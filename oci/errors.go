package oci

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"

	"github.com/containerd/errdefs"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/errcode"
)

// Errors of this package are wrapped in containerd's errdefs classes, so a
// caller branches with errdefs.IsNotFound, errdefs.IsUnauthorized, … and never
// on message text:
//
//   - reference malformed or without registry host: ErrInvalidArgument
//   - manifest, tag or blob missing in the registry, or not in the store under
//     PullNever: ErrNotFound ([ErrNotPresent] for the latter)
//   - registry wants credentials that were not given or were wrong:
//     ErrUnauthenticated; credentials valid but refused: ErrPermissionDenied
//   - content does not match its digest or size: ErrDataLoss
//     ([ErrDigestMismatch]); nothing of it is left in the store
//   - artifact in no accepted Wasm layout: ErrNotImplemented
//     ([*UnsupportedError] names the media types found and accepted)
//   - registry unreachable or failing (5xx, connection refused): ErrUnavailable
var (
	// ErrNotPresent is returned by [Store.Pull] under [PullNever] and by
	// [Store.Resolve] when the store lacks the reference or part of it.
	ErrNotPresent = fmt.Errorf("not present in the local store: %w", errdefs.ErrNotFound)
	// ErrDigestMismatch is returned when fetched content does not hash to the
	// digest (or size) its descriptor names.
	ErrDigestMismatch = fmt.Errorf("content does not match its digest: %w", errdefs.ErrDataLoss)
)

// classed attaches an errdefs class to an error without changing its text.
type classed struct {
	class error
	err   error
}

func (e *classed) Error() string   { return e.err.Error() }
func (e *classed) Unwrap() []error { return []error{e.err, e.class} }

func withClass(class, err error) error { return &classed{class: class, err: err} }

// hasClass reports whether err already carries an errdefs class.
func hasClass(err error) bool {
	for _, c := range []error{
		errdefs.ErrInvalidArgument, errdefs.ErrNotFound, errdefs.ErrUnauthenticated,
		errdefs.ErrPermissionDenied, errdefs.ErrDataLoss, errdefs.ErrNotImplemented,
		errdefs.ErrUnavailable, errdefs.ErrAlreadyExists, errdefs.ErrFailedPrecondition,
		errdefs.ErrResourceExhausted, errdefs.ErrUnknown, errdefs.ErrInternal,
	} {
		if errors.Is(err, c) {
			return true
		}
	}
	return false
}

// classify maps errors of oras-go, net/http and the file system onto errdefs
// classes, adding a hint where the raw message would leave a user guessing.
// host is the registry the operation talked to.
func classify(host string, err error) error {
	if err == nil || hasClass(err) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	var resp *errcode.ErrorResponse
	if errors.As(err, &resp) {
		switch {
		case resp.StatusCode == http.StatusUnauthorized:
			return withClass(errdefs.ErrUnauthenticated, fmt.Errorf(
				"registry %s requires authentication (no or wrong credentials: configure a docker config file or credential helper, or imagePullSecrets): %w", host, err))
		case resp.StatusCode == http.StatusForbidden:
			return withClass(errdefs.ErrPermissionDenied, fmt.Errorf("registry %s denied access: %w", host, err))
		case resp.StatusCode == http.StatusNotFound:
			return withClass(errdefs.ErrNotFound, err)
		case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
			return withClass(errdefs.ErrUnavailable, err)
		case resp.StatusCode == http.StatusBadRequest:
			return withClass(errdefs.ErrInvalidArgument, err)
		}
		return withClass(errdefs.ErrUnknown, err)
	}
	switch {
	case errors.Is(err, auth.ErrBasicCredentialNotFound):
		return withClass(errdefs.ErrUnauthenticated, fmt.Errorf(
			"registry %s requires authentication and no credentials are configured for it (docker config file or credential helper, or imagePullSecrets): %w", host, err))
	case errors.Is(err, errdef.ErrNotFound):
		return withClass(errdefs.ErrNotFound, err)
	case errors.Is(err, errdef.ErrInvalidReference), errors.Is(err, errdef.ErrInvalidDigest),
		errors.Is(err, errdef.ErrMissingReference):
		return withClass(errdefs.ErrInvalidArgument, err)
	case errors.Is(err, content.ErrMismatchedDigest), errors.Is(err, content.ErrTrailingData),
		errors.Is(err, content.ErrInvalidDescriptorSize), errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("%w: %w", ErrDigestMismatch, err)
	case errors.Is(err, errdef.ErrSizeExceedsLimit):
		return withClass(errdefs.ErrResourceExhausted, err)
	}
	var netErr net.Error
	var opErr *net.OpError
	if errors.As(err, &netErr) || errors.As(err, &opErr) {
		return withClass(errdefs.ErrUnavailable, fmt.Errorf("registry %s unreachable: %w", host, err))
	}
	return err
}
