package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	akri "github.com/wasilet/wasilet/agent/apis/akri/v0"
	v0 "github.com/wasilet/wasilet/proto/v0"
)

// Back-off between attempts to (re)open a Discover stream: upstream never
// reopens a closed stream; we retry, doubling up to the cap, and start over
// at once when the handler registers again.
const (
	streamRetryMin = 500 * time.Millisecond
	streamRetryMax = 30 * time.Second
)

// propertyError says which discovery property could not be resolved.
type propertyError struct {
	name string
	err  error
}

func (e *propertyError) Error() string {
	return fmt.Sprintf("discovery property %q: %v", e.name, e.err)
}

// resolveProperties builds the Discover request's discovery_properties: an
// inline value, or a Secret's or ConfigMap's key (namespace "default" unless
// given, as upstream). A missing object or key is an error unless the
// selector is optional, in which case the property is sent without a value.
func resolveProperties(ctx context.Context, c client.Reader, props []akri.DiscoveryProperty) (map[string]*v0.ByteData, error) {
	out := make(map[string]*v0.ByteData, len(props))
	for _, p := range props {
		switch {
		case p.Value != nil:
			out[p.Name] = &v0.ByteData{Vec: []byte(*p.Value)}
		case p.ValueFrom != nil && p.ValueFrom.SecretKeyRef != nil:
			sel := p.ValueFrom.SecretKeyRef
			var s corev1.Secret
			b, found, err := readKey(ctx, c, sel, &s, func() ([]byte, bool) {
				v, ok := s.Data[sel.Key]
				if !ok {
					if sv, ok2 := s.StringData[sel.Key]; ok2 {
						return []byte(sv), true
					}
				}
				return v, ok
			})
			if err != nil {
				return nil, &propertyError{p.Name, fmt.Errorf("secret %s/%s: %w", ns(sel), sel.Name, err)}
			}
			out[p.Name] = byteData(b, found)
		case p.ValueFrom != nil && p.ValueFrom.ConfigMapKeyRef != nil:
			sel := p.ValueFrom.ConfigMapKeyRef
			var cm corev1.ConfigMap
			b, found, err := readKey(ctx, c, sel, &cm, func() ([]byte, bool) {
				if v, ok := cm.Data[sel.Key]; ok {
					return []byte(v), true
				}
				v, ok := cm.BinaryData[sel.Key]
				return v, ok
			})
			if err != nil {
				return nil, &propertyError{p.Name, fmt.Errorf("configmap %s/%s: %w", ns(sel), sel.Name, err)}
			}
			out[p.Name] = byteData(b, found)
		default:
			// Neither value nor valueFrom: upstream sends the name with no value.
			out[p.Name] = &v0.ByteData{}
		}
	}
	return out, nil
}

func byteData(b []byte, found bool) *v0.ByteData {
	if !found {
		return &v0.ByteData{}
	}
	if b == nil {
		b = []byte{}
	}
	return &v0.ByteData{Vec: b}
}

func ns(sel *akri.DiscoveryPropertyKeySelector) string {
	if sel.Namespace == "" {
		return "default"
	}
	return sel.Namespace
}

// readKey gets the object sel names into obj and reads sel.Key with get.
func readKey(ctx context.Context, c client.Reader, sel *akri.DiscoveryPropertyKeySelector, obj client.Object, get func() ([]byte, bool)) ([]byte, bool, error) {
	optional := sel.Optional != nil && *sel.Optional
	err := c.Get(ctx, client.ObjectKey{Namespace: ns(sel), Name: sel.Name}, obj)
	if apierrors.IsNotFound(err) {
		if optional {
			return nil, false, nil
		}
		return nil, false, errors.New("not found")
	}
	if err != nil {
		return nil, false, err
	}
	b, ok := get()
	if !ok {
		if optional {
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("has no key %q", sel.Key)
	}
	return b, true, nil
}

// streamResult is what a Discover stream reports to its Configuration.
type streamResult struct {
	handler Handler
	devices []*v0.Device // the full list (nil after an error: see err)
	err     error        // a terminal problem worth an Event (InvalidArgument, …)
	lost    bool         // the stream broke; devices of this endpoint are stale
}

// stream keeps one Discover stream to one handler endpoint open for one
// Configuration, reopening it with capped back-off (cut short by a value on
// kick), and reports each device list to report. It returns when ctx ends.
func stream(ctx context.Context, h Handler, req *v0.DiscoverRequest, kick <-chan struct{}, report func(streamResult), log *slog.Logger) {
	delay := streamRetryMin
	for ctx.Err() == nil {
		got, err := streamOnce(ctx, h, req, report)
		if ctx.Err() != nil {
			return
		}
		if got {
			delay = streamRetryMin
		}
		code := status.Code(err)
		var se *sourceError
		switch {
		case errors.As(err, &se):
			// A component handler failed (its err result, a trap, a time
			// limit, bad output): an Event, its devices kept for LostGrace,
			// and a new instance after the back-off.
			log.Warn("component discovery handler failed; restarting it", "handler", h.UID(), "err", err, "in", delay)
			report(streamResult{handler: h, err: se})
			report(streamResult{handler: h, lost: true})
		case code == codes.InvalidArgument:
			log.Warn("discovery handler refused the discovery details", "handler", h.UID(), "err", err)
			report(streamResult{handler: h, err: fmt.Errorf("invalid discovery details: %s", status.Convert(err).Message())})
		case err != nil:
			log.Info("discover stream ended; reopening", "handler", h.UID(), "err", err, "in", delay)
			report(streamResult{handler: h, lost: true})
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-kick:
			t.Stop()
			delay = streamRetryMin
			continue
		case <-t.C:
		}
		delay = min(delay*2, streamRetryMax)
	}
}

// streamOnce runs one Discover stream until it ends; got says whether any
// list arrived.
func streamOnce(ctx context.Context, h Handler, req *v0.DiscoverRequest, report func(streamResult)) (got bool, err error) {
	if h.source != nil {
		err := h.source.discover(ctx, req, func(devs []*v0.Device) {
			got = true
			report(streamResult{handler: h, devices: devs})
		})
		return got, err
	}
	conn, err := h.dial()
	if err != nil {
		return false, err
	}
	defer conn.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s, err := v0.NewDiscoveryHandlerClient(conn).Discover(ctx, req)
	if err != nil {
		return false, err
	}
	for {
		resp, err := s.Recv()
		if err == io.EOF {
			return got, errors.New("the handler closed the stream")
		}
		if err != nil {
			return got, err
		}
		got = true
		report(streamResult{handler: h, devices: resp.GetDevices()})
	}
}
