package exchange_test

import (
	"errors"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/wasilet/wasilet/proxy/exchange"
)

// originalSample is the input of the original proxy's marshaller test
// (dh-grpc-proxy discover_response_marshaller.rs), verbatim, odd comma
// placement included.
const originalSample = `
        {
            "devices": [
                {
                    "id":"foo0",
                    "properties":{"DEBUG_ECHO_DESCRIPTION":"foo0"},
                    "mounts":[]
                    ,"device_specs":[]
                },
                {
                    "id":"foo1",
                    "properties":{"DEBUG_ECHO_DESCRIPTION":"foo1"},
                    "mounts":[],
                    "device_specs":[]
                },
                {
                    "id":"foo2",
                    "properties":{"DEBUG_ECHO_DESCRIPTION":"foo2"},
                    "mounts":[],
                    "device_specs":[]
                }
            ]
        }`

// originalHandlerOutput is what the original handler (serde_json::to_string
// of its DebugEchoResult) wrote for descriptions [foo0].
const originalHandlerOutput = `{"devices":[{"id":"foo0","properties":{"DEBUG_ECHO_DESCRIPTION":"foo0"},"mounts":[],"device_specs":[]}]}`

func echo(ids ...string) exchange.Output {
	out := exchange.Output{Devices: []exchange.Device{}}
	for _, id := range ids {
		out.Devices = append(out.Devices, exchange.Device{ID: id, Properties: map[string]string{"DEBUG_ECHO_DESCRIPTION": id}})
	}
	return out
}

func TestParseOutputOriginal(t *testing.T) {
	got, err := exchange.ParseOutput([]byte(originalSample))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(echo("foo0", "foo1", "foo2"), got); diff != "" {
		t.Errorf("original sample (-want +got):\n%s", diff)
	}
	got, err = exchange.ParseOutput([]byte(originalHandlerOutput))
	if err != nil {
		t.Fatal(err)
	}
	// Not "\"foo0\"", as the original proxy had it (Instance hash aae70c).
	if diff := cmp.Diff(echo("foo0"), got); diff != "" {
		t.Errorf("original handler output (-want +got):\n%s", diff)
	}
}

func TestMarshalOutputOriginal(t *testing.T) {
	b, err := exchange.MarshalOutput(echo("foo0"))
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != originalHandlerOutput {
		t.Errorf("MarshalOutput = %s\nwant            %s", b, originalHandlerOutput)
	}
	for _, out := range []exchange.Output{{}, {Devices: []exchange.Device{}}} {
		b, err := exchange.MarshalOutput(out)
		if err != nil || string(b) != `{"devices":[]}` {
			t.Errorf("MarshalOutput(%#v) = %s, %v; want {\"devices\":[]}", out, b, err)
		}
	}
}

func TestParseOutput(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    exchange.Output
		wantErr string // a substring of the error; "" means success
	}{
		{name: "empty list", in: `{"devices":[]}`, want: exchange.Output{Devices: []exchange.Device{}}},
		{name: "surrounding whitespace", in: "\n {\"devices\":[]} \n\n", want: exchange.Output{Devices: []exchange.Device{}}},
		{name: "mounts and device_specs absent", in: `{"devices":[{"id":"foo0","properties":{"DEBUG_ECHO_DESCRIPTION":"foo0"}}]}`, want: echo("foo0")},
		{name: "null lists and properties", in: `{"devices":[{"id":"a","properties":null,"mounts":null,"device_specs":null}]}`,
			want: exchange.Output{Devices: []exchange.Device{{ID: "a", Properties: map[string]string{}}}}},
		{name: "no properties", in: `{"devices":[{"id":"a"}]}`, want: exchange.Output{Devices: []exchange.Device{{ID: "a", Properties: map[string]string{}}}}},
		{name: "unknown fields ignored", in: `{"v":2,"devices":[{"id":"a","extra":{"x":[1]},"mounts":[{"container_path":"/c","host_path":"/h","z":1}]}]}`,
			want: exchange.Output{Devices: []exchange.Device{{ID: "a", Properties: map[string]string{}, Mounts: []exchange.Mount{{ContainerPath: "/c", HostPath: "/h"}}}}}},
		{name: "string values exactly", in: `{"devices":[{"id":"\"foo0\"","properties":{"Q":"\"x\"","E":"","U":"caf\u00e9 \u2028","S":" sp "}}]}`,
			want: exchange.Output{Devices: []exchange.Device{{ID: `"foo0"`, Properties: map[string]string{"Q": `"x"`, "E": "", "U": "café \u2028", "S": " sp "}}}}},
		{name: "numbers and booleans as JSON text", in: `{"devices":[{"id":"a","properties":{"N":1.50,"I":-3,"E":1e3,"T":true,"F":false}}]}`,
			want: exchange.Output{Devices: []exchange.Device{{ID: "a", Properties: map[string]string{"N": "1.50", "I": "-3", "E": "1e3", "T": "true", "F": "false"}}}}},
		{name: "mounts and device specs", in: `{"devices":[{"id":"cam","properties":{},
			"mounts":[{"container_path":"/data","host_path":"/srv/cam","read_only":true},{"container_path":"/tmp","host_path":"/t"}],
			"device_specs":[{"container_path":"/dev/video0","host_path":"/dev/video2","permissions":"rw"},{"container_path":"/dev/x","host_path":"/dev/y"}]}]}`,
			want: exchange.Output{Devices: []exchange.Device{{ID: "cam", Properties: map[string]string{},
				Mounts:      []exchange.Mount{{ContainerPath: "/data", HostPath: "/srv/cam", ReadOnly: true}, {ContainerPath: "/tmp", HostPath: "/t"}},
				DeviceSpecs: []exchange.DeviceSpec{{ContainerPath: "/dev/video0", HostPath: "/dev/video2", Permissions: "rw"}, {ContainerPath: "/dev/x", HostPath: "/dev/y"}}}}}},
		{name: "order kept", in: `{"devices":[{"id":"b"},{"id":"a"}]}`,
			want: exchange.Output{Devices: []exchange.Device{{ID: "b", Properties: map[string]string{}}, {ID: "a", Properties: map[string]string{}}}}},

		{name: "empty file", in: "", wantErr: "empty file"},
		{name: "blank file", in: " \n\t", wantErr: "empty file"},
		{name: "truncated", in: `{"devices":[{"id":"foo0","prop`, wantErr: "truncated JSON"},
		{name: "truncated after object start", in: `{`, wantErr: "truncated JSON"},
		{name: "malformed", in: `{"devices":[{"id":"foo0",}]}`, wantErr: "malformed JSON at byte"},
		{name: "not JSON", in: `devices: []`, wantErr: "malformed JSON"},
		{name: "trailing data", in: `{"devices":[]}{"devices":[]}`, wantErr: "after the JSON object"},
		{name: "trailing garbage", in: `{"devices":[]} x`, wantErr: "after the JSON object"},
		{name: "top level array", in: `[]`, wantErr: "top level is an array, want an object"},
		{name: "top level null", in: `null`, wantErr: "top level is null"},
		{name: "top level string", in: `"x"`, wantErr: "top level is a string"},
		{name: "missing devices", in: `{"device":[]}`, wantErr: `missing "devices"`},
		{name: "devices null", in: `{"devices":null}`, wantErr: `"devices" is null, want an array`},
		{name: "devices object", in: `{"devices":{"id":"a"}}`, wantErr: `"devices" is an object, want an array`},
		{name: "devices string", in: `{"devices":"a"}`, wantErr: `"devices" is a string`},
		{name: "device not object", in: `{"devices":["foo0"]}`, wantErr: "devices[0] is a string, want an object"},
		{name: "missing id", in: `{"devices":[{"id":"a"},{"properties":{}}]}`, wantErr: "devices[1]: missing id"},
		{name: "id number", in: `{"devices":[{"id":3}]}`, wantErr: "devices[0]: id is a number (3), want a string"},
		{name: "id null", in: `{"devices":[{"id":null}]}`, wantErr: "id is null, want a string"},
		{name: "id object", in: `{"devices":[{"id":{"a":1}}]}`, wantErr: "id is an object, want a string"},
		{name: "empty id", in: `{"devices":[{"id":""}]}`, wantErr: "devices[0]: empty id"},
		{name: "duplicate id", in: `{"devices":[{"id":"a"},{"id":"b"},{"id":"a"}]}`, wantErr: `devices[2]: duplicate id "a" (also devices[0])`},
		{name: "properties array", in: `{"devices":[{"id":"a","properties":[]}]}`, wantErr: `devices[0] (id "a"): properties is an array, want an object`},
		{name: "property null", in: `{"devices":[{"id":"a","properties":{"P":null}}]}`, wantErr: `property "P" is null, want a string`},
		{name: "property object", in: `{"devices":[{"id":"a","properties":{"P":{}}}]}`, wantErr: `property "P" is an object`},
		{name: "property array", in: `{"devices":[{"id":"a","properties":{"P":["x"]}}]}`, wantErr: `property "P" is an array`},
		{name: "mounts object", in: `{"devices":[{"id":"a","mounts":{}}]}`, wantErr: "mounts is an object, want an array"},
		{name: "mount not object", in: `{"devices":[{"id":"a","mounts":["/x"]}]}`, wantErr: "mounts[0] is a string, want an object"},
		{name: "mount without host_path", in: `{"devices":[{"id":"a","mounts":[{"container_path":"/c"}]}]}`, wantErr: "mounts[0]: missing host_path"},
		{name: "mount empty container_path", in: `{"devices":[{"id":"a","mounts":[{"container_path":"","host_path":"/h"}]}]}`, wantErr: "mounts[0]: empty container_path"},
		{name: "mount read_only string", in: `{"devices":[{"id":"a","mounts":[{"container_path":"/c","host_path":"/h","read_only":"yes"}]}]}`, wantErr: "read_only is a string, want a boolean"},
		{name: "device_specs string", in: `{"devices":[{"id":"a","device_specs":"x"}]}`, wantErr: "device_specs is a string, want an array"},
		{name: "device spec path number", in: `{"devices":[{"id":"a","device_specs":[{"container_path":1,"host_path":"/h"}]}]}`, wantErr: "device_specs[0]: container_path is a number, want a string"},
		{name: "device spec permissions number", in: `{"devices":[{"id":"a","device_specs":[{"container_path":"/c","host_path":"/h","permissions":7}]}]}`, wantErr: "permissions is a number, want a string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := exchange.ParseOutput([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("ParseOutput(%q) = %+v, want an error containing %q", tt.in, got, tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("ParseOutput(%q) error %q, want it to contain %q", tt.in, err, tt.wantErr)
				}
				if !errors.Is(err, exchange.ErrInvalidOutput) {
					t.Errorf("error %v does not wrap ErrInvalidOutput", err)
				}
				var marked interface{ InvalidParameter() }
				if !errors.As(err, &marked) {
					t.Errorf("error %v is not of the invalid-argument class", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseOutput(%q): %v", tt.in, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseOutput(%q) (-want +got):\n%s", tt.in, diff)
			}
			// What parses marshals and parses back to the same.
			b, err := exchange.MarshalOutput(got)
			if err != nil {
				t.Fatalf("MarshalOutput: %v", err)
			}
			again, err := exchange.ParseOutput(b)
			if err != nil {
				t.Fatalf("ParseOutput(MarshalOutput) %s: %v", b, err)
			}
			if diff := cmp.Diff(got, again); diff != "" {
				t.Errorf("round trip of %s (-first +second):\n%s", b, diff)
			}
		})
	}
}

func TestMarshalOutputRefuses(t *testing.T) {
	tests := []struct {
		name    string
		out     exchange.Output
		wantErr string
	}{
		{name: "empty id", out: exchange.Output{Devices: []exchange.Device{{ID: "a"}, {}}}, wantErr: "devices[1]: empty id"},
		{name: "duplicate id", out: echo("a", "a"), wantErr: `devices[1]: duplicate id "a"`},
		{name: "mount without paths", out: exchange.Output{Devices: []exchange.Device{{ID: "a", Mounts: []exchange.Mount{{ContainerPath: "/c"}}}}}, wantErr: "mounts[0]"},
		{name: "device spec without paths", out: exchange.Output{Devices: []exchange.Device{{ID: "a", DeviceSpecs: []exchange.DeviceSpec{{HostPath: "/h"}}}}}, wantErr: "device_specs[0]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := exchange.MarshalOutput(tt.out)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, exchange.ErrInvalidOutput) {
				t.Fatalf("MarshalOutput = %s, %v; want an ErrInvalidOutput containing %q", b, err, tt.wantErr)
			}
		})
	}
}

func TestMarshalOutputNoHTMLEscaping(t *testing.T) {
	out := exchange.Output{Devices: []exchange.Device{{ID: "a<b>&c", Properties: map[string]string{"P": "x&y", "A": "1"}}}}
	b, err := exchange.MarshalOutput(out)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"devices":[{"id":"a<b>&c","properties":{"A":"1","P":"x&y"},"mounts":[],"device_specs":[]}]}`
	if string(b) != want {
		t.Errorf("MarshalOutput = %s, want %s", b, want)
	}
}

// TestParseOutputPrefixes checks that every strict prefix of a valid file (a
// file caught half-written) is refused, with a clear error and no panic.
func TestParseOutputPrefixes(t *testing.T) {
	full, err := exchange.MarshalOutput(exchange.Output{Devices: []exchange.Device{
		{ID: "foo0", Properties: map[string]string{"DEBUG_ECHO_DESCRIPTION": "foo0", "N": "1"}},
		{ID: "cam", Mounts: []exchange.Mount{{ContainerPath: "/c", HostPath: "/h", ReadOnly: true}},
			DeviceSpecs: []exchange.DeviceSpec{{ContainerPath: "/dev/a", HostPath: "/dev/b", Permissions: "rwm"}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	for _, file := range [][]byte{full, []byte(originalSample), []byte(originalHandlerOutput)} {
		for n := 0; n < len(file); n++ {
			if strings.TrimSpace(string(file[n:])) == "" {
				continue // only whitespace was cut
			}
			if _, err := exchange.ParseOutput(file[:n]); err == nil || !errors.Is(err, exchange.ErrInvalidOutput) {
				t.Fatalf("ParseOutput(%q) = %v, want an ErrInvalidOutput", file[:n], err)
			}
		}
	}
}

// TestParseOutputMutations flips, drops and inserts bytes of valid files at
// random (seeded, so failures repeat): ParseOutput must never panic, must
// return ErrInvalidOutput on failure, and whatever it accepts must survive a
// MarshalOutput/ParseOutput round trip unchanged.
func TestParseOutputMutations(t *testing.T) {
	seeds := []string{originalSample, originalHandlerOutput,
		`{"devices":[{"id":"a","properties":{"N":1.5,"B":true},"mounts":[{"container_path":"/c","host_path":"/h","read_only":false}],"device_specs":[{"container_path":"/d","host_path":"/e","permissions":"r"}]}]}`}
	alphabet := []byte(`{}[]",:0123456789.eE-+ truefalsnl\abc` + "\n\t\x00\xff")
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 20000; i++ {
		b := []byte(seeds[r.IntN(len(seeds))])
		for range 1 + r.IntN(3) {
			p := r.IntN(len(b))
			switch r.IntN(3) {
			case 0:
				b[p] = alphabet[r.IntN(len(alphabet))]
			case 1:
				b = append(b[:p:p], b[p+1:]...)
			case 2:
				b = append(b[:p:p], append([]byte{alphabet[r.IntN(len(alphabet))]}, b[p:]...)...)
			}
		}
		checkParse(t, b)
	}
}

func checkParse(t *testing.T, b []byte) {
	t.Helper()
	out, err := exchange.ParseOutput(b)
	if err != nil {
		if !errors.Is(err, exchange.ErrInvalidOutput) {
			t.Fatalf("ParseOutput(%q) error %v does not wrap ErrInvalidOutput", b, err)
		}
		return
	}
	for _, d := range out.Devices {
		if d.ID == "" || d.Properties == nil {
			t.Fatalf("ParseOutput(%q) = %+v: empty id or nil properties", b, out)
		}
	}
	m, err := exchange.MarshalOutput(out)
	if err != nil {
		t.Fatalf("MarshalOutput(ParseOutput(%q)): %v", b, err)
	}
	again, err := exchange.ParseOutput(m)
	if err != nil {
		t.Fatalf("ParseOutput(%q) (from %q): %v", m, b, err)
	}
	if !reflect.DeepEqual(out, again) {
		t.Fatalf("round trip of %q: %+v, then %+v", b, out, again)
	}
}

func FuzzParseOutput(f *testing.F) {
	for _, s := range []string{originalSample, originalHandlerOutput, `{"devices":[]}`, `{"devices":[{"id":"a","properties":{"N":1}}]}`, `{`, ``} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) { checkParse(t, b) })
}
