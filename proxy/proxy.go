package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
	"go.yaml.in/yaml/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/wasilet/wasilet/proto/v0"
	"github.com/wasilet/wasilet/proxy/exchange"
)

// Defaults of Options.
const (
	DefaultSilenceTimeout = 30 * time.Second
	// DefaultPollInterval is how often the exchange directory is scanned
	// when fsnotify cannot watch it (and as a safety net when it can).
	DefaultPollInterval = 2 * time.Second
)

// Options configure a Proxy.
type Options struct {
	// Dir is the exchange directory shared with the Wasm handler's pod
	// (default /tmp/wde-dir).
	Dir string
	// Poll, when positive, reads out.out every Poll instead of watching the
	// directory with fsnotify (the original proxy polled every 4 s).
	Poll time.Duration
	// SilenceTimeout: a request the handler has not answered for this long
	// is reported (logged as a warning, once per silence).
	SilenceTimeout time.Duration
	// Validate, when set, checks a request's discoveryDetails before they
	// are written for the handler; an error is returned to the agent as
	// InvalidArgument (a Wasm handler cannot answer that through files).
	Validate func(details string) error
	Logger   *slog.Logger
}

// Proxy bridges Akri Discover requests to a Wasm discovery handler through
// files: it writes each distinct request to an in.in and streams every new
// valid out.out of that request to the agent.
type Proxy struct {
	opts Options
	log  *slog.Logger

	mu       sync.Mutex
	requests map[string]*request // by id
	wake     chan struct{}       // a scan is due (new request, watch event)
}

// request is one distinct Discover request and the streams asking it.
type request struct {
	id    string
	dir   string // Dir itself (the first request) or Dir/<id>
	input []byte
	refs  int

	devices  []*v0.Device // the last good list
	have     bool
	changed  chan struct{}  // closed and replaced when devices change
	outStamp exchange.Stamp // of the out.out last read
	badSeen  string         // the last malformed-output reason logged
	asked    time.Time      // when in.in was written (silence timer)
	silent   bool           // silence already reported
}

// New returns a proxy over opts.Dir (created if missing).
func New(opts Options) (*Proxy, error) {
	if opts.Dir == "" {
		opts.Dir = exchange.DefaultDir
	}
	if opts.SilenceTimeout == 0 {
		opts.SilenceTimeout = DefaultSilenceTimeout
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("exchange directory: %w", err)
	}
	return &Proxy{opts: opts, log: opts.Logger.With("exchange", opts.Dir), requests: map[string]*request{}, wake: make(chan struct{}, 1)}, nil
}

// Run watches the exchange directory until ctx ends.
func (p *Proxy) Run(ctx context.Context) error {
	interval := p.opts.Poll
	var events <-chan fsnotify.Event
	var watcher *fsnotify.Watcher
	if interval <= 0 {
		interval = DefaultPollInterval
		w, err := fsnotify.NewWatcher()
		if err == nil {
			err = w.Add(p.opts.Dir)
		}
		if err != nil {
			p.log.Warn("cannot watch the exchange directory; polling instead", "every", interval, "err", err)
		} else {
			watcher = w
			events = w.Events
			defer w.Close()
		}
	}
	watched := map[string]bool{}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if watcher != nil {
			for _, dir := range p.dirs() {
				if dir != p.opts.Dir && !watched[dir] {
					if err := watcher.Add(dir); err == nil {
						watched[dir] = true
					}
				}
			}
		}
		p.scan(time.Now())
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-p.wake:
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			if filepath.Base(ev.Name) != exchange.OutFile {
				continue
			}
		}
	}
}

func (p *Proxy) dirs() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, r := range p.requests {
		out = append(out, r.dir)
	}
	return out
}

// scan reads the out.out of every request whose file changed.
func (p *Proxy) scan(now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, r := range p.requests {
		p.readLocked(r, now)
	}
}

func (p *Proxy) readLocked(r *request, now time.Time) {
	path := filepath.Join(r.dir, exchange.OutFile)
	fi, err := os.Stat(path)
	if err != nil {
		if r.refs > 0 && !r.have && !r.silent && now.Sub(r.asked) > p.opts.SilenceTimeout {
			r.silent = true
			p.log.Warn("the discovery handler has not answered", "request", r.id, "waiting", now.Sub(r.asked).Round(time.Second), "file", path)
		}
		return
	}
	stamp := exchange.StampOf(fi)
	if stamp == r.outStamp {
		return
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return
	}
	r.outStamp = stamp
	out, err := exchange.ParseOutput(data)
	if err != nil {
		if reason := err.Error(); reason != r.badSeen {
			r.badSeen = reason
			p.log.Warn("ignoring malformed handler output; keeping the last good device list", "file", path, "reason", reason, "kept", len(r.devices))
		}
		return
	}
	r.badSeen = ""
	r.silent = false
	devs := toProto(out)
	if r.have && slices.EqualFunc(devs, r.devices, func(a, b *v0.Device) bool { return proto.Equal(a, b) }) {
		return
	}
	r.devices, r.have = devs, true
	close(r.changed)
	r.changed = make(chan struct{})
	p.log.Info("handler reported devices", "request", r.id, "devices", ids(devs))
}

func toProto(out exchange.Output) []*v0.Device {
	devs := make([]*v0.Device, 0, len(out.Devices))
	for _, d := range out.Devices {
		pd := &v0.Device{Id: d.ID, Properties: d.Properties}
		for _, m := range d.Mounts {
			pd.Mounts = append(pd.Mounts, &v0.Mount{ContainerPath: m.ContainerPath, HostPath: m.HostPath, ReadOnly: m.ReadOnly})
		}
		for _, s := range d.DeviceSpecs {
			pd.DeviceSpecs = append(pd.DeviceSpecs, &v0.DeviceSpec{ContainerPath: s.ContainerPath, HostPath: s.HostPath, Permissions: s.Permissions})
		}
		devs = append(devs, pd)
	}
	return devs
}

func ids(devs []*v0.Device) []string {
	out := make([]string, 0, len(devs))
	for _, d := range devs {
		out = append(out, d.GetId())
	}
	return out
}

// Input is the in.in the proxy writes for a request: its discoveryDetails
// (YAML) as a JSON object, e.g. {"descriptions":["foo0"]}. Empty details, or
// a null document, are {}. Scalars keep the text they have in YAML wherever
// JSON can carry it, so a handler reads from in.in what a native handler
// reads from the details (YAML 1.2, as debugecho.ParseDetails): 1.50 stays
// 1.50, and yes, 0x1F or .inf, which are no JSON literals, become strings.
func Input(req *v0.DiscoverRequest) ([]byte, error) {
	details := []byte(req.GetDiscoveryDetails())
	var doc yaml.Node
	if err := yaml.Unmarshal(details, &doc); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "discoveryDetails are not valid YAML: %v", err)
	}
	// Decoding once checks what the walk below does not: excessive
	// aliasing and duplicate keys.
	var probe any
	if err := doc.Decode(&probe); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "discoveryDetails: %v", err)
	}
	if probe == nil {
		return []byte("{}"), nil
	}
	if root := doc.Content[0]; root.Kind != yaml.MappingNode && (root.Kind != yaml.AliasNode || root.Alias.Kind != yaml.MappingNode) {
		return nil, status.Errorf(codes.InvalidArgument, "discoveryDetails must be a YAML mapping, not %s", root.ShortTag())
	}
	v, err := yamlToJSON(doc.Content[0])
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "discoveryDetails: %v", err)
	}
	return json.Marshal(v)
}

var jsonNumber = regexp.MustCompile(`^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$`)

// yamlToJSON converts a YAML node to a value json.Marshal writes with the
// node's scalar text (see Input).
func yamlToJSON(n *yaml.Node) (any, error) {
	switch n.Kind {
	case yaml.AliasNode:
		return yamlToJSON(n.Alias)
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			v, err := yamlToJSON(c)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	case yaml.MappingNode:
		out := map[string]any{}
		if err := mergeMapping(out, n); err != nil {
			return nil, err
		}
		return out, nil
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return nil, nil
		case "!!bool":
			if n.Value == "true" || n.Value == "false" {
				return n.Value == "true", nil
			}
		case "!!int", "!!float":
			if jsonNumber.MatchString(n.Value) {
				return json.Number(n.Value), nil
			}
		}
		var s string
		if err := n.Decode(&s); err != nil {
			return nil, err
		}
		return s, nil
	}
	return nil, fmt.Errorf("line %d: unexpected YAML node", n.Line)
}

// mergeMapping adds the keys of mapping n to out: merged ones (<<) first,
// so that the mapping's own keys win.
func mergeMapping(out map[string]any, n *yaml.Node) error {
	for n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: only mappings can be merged", n.Line)
	}
	for pass := range 2 {
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			merge := k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge"
			switch {
			case pass == 0 && merge:
				for v.Kind == yaml.AliasNode {
					v = v.Alias
				}
				srcs := []*yaml.Node{v}
				if v.Kind == yaml.SequenceNode {
					srcs = v.Content
				}
				// Of merged mappings, the first wins.
				for _, src := range slices.Backward(srcs) {
					if err := mergeMapping(out, src); err != nil {
						return err
					}
				}
			case pass == 1 && !merge:
				if k.Kind != yaml.ScalarNode {
					return fmt.Errorf("line %d: a mapping key is not a scalar", k.Line)
				}
				var key string
				if err := k.Decode(&key); err != nil {
					return err
				}
				val, err := yamlToJSON(v)
				if err != nil {
					return err
				}
				out[key] = val
			}
		}
	}
	return nil
}

// Discover serves one Discover stream: the request is written for the
// handler (once per distinct request), the last good device list is sent at
// once if there is one, and every change after that.
func (p *Proxy) Discover(ctx context.Context, req *v0.DiscoverRequest, send func([]*v0.Device) error) error {
	if p.opts.Validate != nil {
		if err := p.opts.Validate(req.GetDiscoveryDetails()); err != nil {
			return status.Errorf(codes.InvalidArgument, "invalid discoveryDetails: %v", err)
		}
	}
	input, err := Input(req)
	if err != nil {
		return err
	}
	r, err := p.acquire(input)
	if err != nil {
		return status.Errorf(codes.Unavailable, "write the request for the handler: %v", err)
	}
	defer p.release(r)
	for {
		p.mu.Lock()
		devs, have, changed := r.devices, r.have, r.changed
		p.mu.Unlock()
		if have {
			if err := send(devs); err != nil {
				return err
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		}
	}
}

// acquire finds or creates the request for input and writes its in.in.
func (p *Proxy) acquire(input []byte) (*request, error) {
	id := exchange.RequestID(input)
	p.mu.Lock()
	defer p.mu.Unlock()
	if r := p.requests[id]; r != nil {
		r.refs++
		return r, nil
	}
	dir := p.opts.Dir
	for _, o := range p.requests {
		if o.dir == p.opts.Dir {
			dir = filepath.Join(p.opts.Dir, id) // the top level is taken
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	in := filepath.Join(dir, exchange.InFile)
	if old, err := os.ReadFile(in); err != nil || !bytes.Equal(old, input) {
		// A new request for this directory: an out.out left from another
		// request must not be taken for its answer. The request goes first,
		// so that an answer the handler writes meanwhile is to this one.
		if err := exchange.WriteFileAtomic(in, input); err != nil {
			return nil, err
		}
		if err := os.Remove(filepath.Join(dir, exchange.OutFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		p.log.Info("request written for the handler", "request", id, "file", in, "input", string(input))
	}
	r := &request{id: id, dir: dir, input: input, refs: 1, changed: make(chan struct{}), asked: time.Now()}
	p.requests[id] = r
	p.readLocked(r, time.Now())
	select {
	case p.wake <- struct{}{}:
	default:
	}
	return r, nil
}

// release drops a stream; the last one of a sub-directory request removes
// its directory (the handler stops answering it).
func (p *Proxy) release(r *request) {
	p.mu.Lock()
	defer p.mu.Unlock()
	r.refs--
	if r.refs > 0 {
		return
	}
	delete(p.requests, r.id)
	if r.dir != p.opts.Dir {
		_ = os.RemoveAll(r.dir)
	}
}
