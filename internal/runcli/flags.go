package runcli

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"time"
)

// Flag is one of `wasilet run`'s flags: the cobra command defines it on its
// pflag set (Value satisfies pflag.Value; Bool flags take no argument) and
// Early parses it, from this one list, so the two cannot drift apart.
type Flag struct {
	Name, Short, Usage string
	Bool               bool
	Value              Value
}

// Value is pflag.Value, declared here so that this package, which runs
// before most of the binary initializes, does not import pflag (its import
// of net would make it initialize late).
type Value interface {
	String() string
	Set(string) error
	Type() string
}

// List is f's flags, each bound to its field.
func (f *Flags) List() []Flag {
	return []Flag{
		{Name: "env", Short: "e", Value: (*stringsValue)(&f.Env), Usage: "set an environment variable for the guest: `K=V` (K alone passes wasilet's own value); repeatable"},
		{Name: "dir", Value: (*stringsValue)(&f.Dirs), Usage: "preopen a host directory: `HOST[:GUEST[:ro]]` (GUEST defaults to HOST); repeatable"},
		{Name: "memory", Value: (*stringValue)(&f.Memory), Usage: "cap the guest's linear memory, e.g. 64Mi (default: no cap)"},
		{Name: "timeout", Value: (*durationValue)(&f.Timeout), Usage: "stop the guest after this long, e.g. 5s (default: none)"},
		{Name: "cache-dir", Value: (*stringValue)(&f.CacheDir), Usage: `compiled-code cache (default: $XDG_CACHE_HOME/wasilet/compiled; "none" disables it)`},
		{Name: "argv0", Value: (*stringValue)(&f.Argv0), Usage: "argv[0] for the guest (default: the file or repository name)"},
		{Name: "store", Value: (*stringValue)(&f.Store), Usage: "OCI store for references (default: the one 'wasilet pull' uses)"},
		{Name: "plain-http", Bool: true, Value: (*boolValue)(&f.PlainHTTP), Usage: "pull references over plain HTTP"},
		{Name: "insecure-registry", Value: (*stringsValue)(&f.Insecure), Usage: "registry (host[:port]) reached over plain HTTP; repeatable"},
	}
}

type stringValue string

func (v *stringValue) String() string     { return string(*v) }
func (v *stringValue) Set(s string) error { *v = stringValue(s); return nil }
func (v *stringValue) Type() string       { return "string" }

// stringsValue is a repeatable flag whose every value is kept whole (no
// comma splitting), like pflag's StringArray.
type stringsValue []string

func (v *stringsValue) String() string {
	if len(*v) == 0 {
		return "[]"
	}
	return "[" + strings.Join(*v, ",") + "]"
}
func (v *stringsValue) Set(s string) error { *v = append(*v, s); return nil }
func (v *stringsValue) Type() string       { return "stringArray" }

type durationValue time.Duration

func (v *durationValue) String() string { return time.Duration(*v).String() }
func (v *durationValue) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*v = durationValue(d)
	return nil
}
func (v *durationValue) Type() string { return "duration" }

type boolValue bool

func (v *boolValue) String() string { return strconv.FormatBool(bool(*v)) }
func (v *boolValue) Set(s string) error {
	b, err := strconv.ParseBool(s)
	if err != nil {
		return err
	}
	*v = boolValue(b)
	return nil
}
func (v *boolValue) Type() string { return "bool" }

var errDecline = errors.New("not a command line Early handles")

// parse reads argv (after the verb) the way pflag reads the cobra command's
// flags — flags and arguments interspersed, "--" ending the flags, --name=v
// or --name v, -e v, -e=v or -ev, bool flags alone or with =true/false —
// into f and returns the arguments. Anything else (help, an unknown flag, a
// missing or bad value) returns errDecline: the full command then parses
// argv itself and reports the problem.
func (f *Flags) parse(argv []string) ([]string, error) {
	flags := f.List()
	find := func(name string, short bool) *Flag {
		for i := range flags {
			if (!short && flags[i].Name == name) || (short && flags[i].Short != "" && flags[i].Short == name) {
				return &flags[i]
			}
		}
		return nil
	}
	var args []string
	for i := 0; i < len(argv); i++ {
		a := argv[i]
		var fl *Flag
		var value string
		hasValue := false
		switch {
		case a == "--":
			return append(args, argv[i+1:]...), nil
		case strings.HasPrefix(a, "--"):
			name, v, ok := strings.Cut(a[2:], "=")
			fl, value, hasValue = find(name, false), v, ok
		case strings.HasPrefix(a, "-") && len(a) > 1:
			fl = find(a[1:2], true)
			if rest := a[2:]; rest != "" {
				value, hasValue = strings.TrimPrefix(rest, "="), true
			}
		default:
			args = append(args, a)
			continue
		}
		if fl == nil {
			return nil, errDecline
		}
		if !hasValue {
			if fl.Bool {
				value = "true"
			} else if i+1 < len(argv) {
				i++
				value = argv[i]
			} else {
				return nil, errDecline
			}
		}
		if err := fl.Value.Set(value); err != nil {
			return nil, errDecline
		}
	}
	return args, nil
}

// Early parses argv (os.Args[1:]) when it is a command line Run can finish
// alone: the verb run, flags that parse, and an existing regular file. It
// returns the flags and Run's args; false means the full command handles
// argv (help, flag errors and references included).
func Early(argv []string) (*Flags, []string, bool) {
	if len(argv) == 0 || argv[0] != "run" {
		return nil, nil, false
	}
	f := new(Flags)
	args, err := f.parse(argv[1:])
	if err != nil || len(args) == 0 {
		return nil, nil, false
	}
	if fi, err := os.Stat(args[0]); err != nil || !fi.Mode().IsRegular() {
		return nil, nil, false
	}
	return f, args, true
}
