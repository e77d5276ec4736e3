package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	// Lets the WASI p2 component build run and grow its heap.
	_ "github.com/wasilet/wasilet/handlers/internal/wasmalloc"
	"github.com/wasilet/wasilet/proxy/exchange"
)

const (
	// dirEnv names the exchange directory when no argument does.
	dirEnv = "WDE_DIR"
	// intervalEnv is the poll interval, a Go duration.
	intervalEnv = "DEBUG_ECHO_POLL_INTERVAL"
	// defaultInterval is the poll interval when intervalEnv is unset.
	defaultInterval = 100 * time.Millisecond
)

func main() {
	os.Exit(run(context.Background(), os.Args, os.Getenv, os.Stdout, os.Stderr))
}

// run runs the handler until ctx ends (in the pod: forever); it returns the
// exit code, 2 for bad arguments or environment.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	cfg, err := parseConfig(args, getenv)
	if err != nil {
		fmt.Fprintf(stderr, "debug-echo: %v\nusage: debug-echo [DIR] (DIR defaults to $%s, then %s; poll interval $%s, default %s)\n",
			err, dirEnv, exchange.DefaultDir, intervalEnv, defaultInterval)
		return 2
	}
	fmt.Fprintf(stdout, "debugEcho discovery handler watching %s every %s\n", cfg.dir, cfg.interval)
	w := newWatcher(cfg.dir, stdout, stderr)
	tick := time.NewTicker(cfg.interval)
	defer tick.Stop()
	for {
		w.step(time.Now())
		select {
		case <-ctx.Done():
			return 0
		case <-tick.C:
		}
	}
}

type config struct {
	dir      string
	interval time.Duration
}

func parseConfig(args []string, getenv func(string) string) (config, error) {
	cfg := config{dir: exchange.DefaultDir, interval: defaultInterval}
	if v := getenv(dirEnv); v != "" {
		cfg.dir = v
	}
	switch len(args) {
	case 0, 1:
	case 2:
		if args[1] == "" {
			return config{}, errors.New("empty directory argument")
		}
		cfg.dir = args[1]
	default:
		return config{}, fmt.Errorf("too many arguments: %q", args[1:])
	}
	if v := getenv(intervalEnv); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return config{}, fmt.Errorf("%s: %w", intervalEnv, err)
		}
		if d <= 0 {
			return config{}, fmt.Errorf("%s: %s is not positive", intervalEnv, v)
		}
		cfg.interval = d
	}
	return cfg, nil
}
