package runtime

import (
	"fmt"

	"github.com/containerd/errdefs"
)

// componentBackend returns the backend for WASI p2 components.
func (e *Engine) componentBackend() (backend, error) {
	return nil, fmt.Errorf("components not supported yet: %w", errdefs.ErrNotImplemented)
}
