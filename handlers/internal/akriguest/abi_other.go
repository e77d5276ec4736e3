//go:build !wasip1

package akriguest

import "errors"

var handler Handler

// Serve makes h the component's handler (recorded only, outside Wasm).
func Serve(h Handler) { handler = h }

// HTTPGet is available inside the component only.
func HTTPGet(string) (Response, error) {
	return Response{}, errors.New("akriguest: HTTPGet needs the akri:discovery/http import (wasip1 component build)")
}
