package discoveryhandler

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ToGRPC turns an error of a [Discoverer] into a gRPC status error:
//
//   - an error carrying a gRPC status (status.Error, wrapped or not) keeps it;
//   - context.Canceled and context.DeadlineExceeded become Canceled and
//     DeadlineExceeded;
//   - an error whose chain holds a class marker method, as the error classes of
//     github.com/containerd/errdefs have (errdefs.ErrInvalidArgument has
//     InvalidParameter(), and so on), gets that class's code: InvalidArgument,
//     NotFound, AlreadyExists, FailedPrecondition, Unavailable, Unimplemented,
//     PermissionDenied, Unauthenticated, ResourceExhausted, Aborted,
//     OutOfRange, DataLoss, DeadlineExceeded or Internal;
//   - anything else becomes Unknown.
//
// The message is err's text. ToGRPC(nil) is nil.
func ToGRPC(err error) error {
	if err == nil {
		return nil
	}
	if s, ok := status.FromError(err); ok {
		return s.Err()
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return status.FromContextError(err).Err()
	}
	return status.Error(classCode(err), err.Error())
}

// classCode finds the code of the first class marker in err's chain.
func classCode(err error) codes.Code {
	for _, c := range classes {
		if c.is(err) {
			return c.code
		}
	}
	return codes.Unknown
}

type class struct {
	is   func(error) bool
	code codes.Code
}

func marked[T any](err error) bool {
	var t T
	return errors.As(err, &t)
}

// The marker methods of the errdefs classes (and of Moby's errdefs before them).
var classes = []class{
	{marked[interface{ InvalidParameter() }], codes.InvalidArgument},
	{marked[interface{ NotFound() }], codes.NotFound},
	{marked[interface{ AlreadyExists() }], codes.AlreadyExists},
	{marked[interface{ Conflict() }], codes.FailedPrecondition},
	{marked[interface{ FailedPrecondition() }], codes.FailedPrecondition},
	{marked[interface{ Unavailable() }], codes.Unavailable},
	{marked[interface{ NotImplemented() }], codes.Unimplemented},
	{marked[interface{ Forbidden() }], codes.PermissionDenied},
	{marked[interface{ Unauthorized() }], codes.Unauthenticated},
	{marked[interface{ ResourceExhausted() }], codes.ResourceExhausted},
	{marked[interface{ Aborted() }], codes.Aborted},
	{marked[interface{ OutOfRange() }], codes.OutOfRange},
	{marked[interface{ DataLoss() }], codes.DataLoss},
	{marked[interface{ DeadlineExceeded() }], codes.DeadlineExceeded},
	{marked[interface{ System() }], codes.Internal},
}
