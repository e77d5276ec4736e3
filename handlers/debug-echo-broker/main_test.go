package main

import (
	"strings"
	"testing"
)

func TestGreet(t *testing.T) {
	tests := []struct {
		name       string
		env        map[string]string
		stdout     string
		warnsAbout string
	}{
		{name: "device", env: map[string]string{"DEBUG_ECHO_DESCRIPTION": "foo0"},
			stdout: "Pod is running and using debugEcho device named: \"foo0\"\n"},
		{name: "quotes are escaped", env: map[string]string{"DEBUG_ECHO_DESCRIPTION": `"foo0"`},
			stdout: "Pod is running and using debugEcho device named: \"\\\"foo0\\\"\"\n"},
		{name: "set but empty", env: map[string]string{"DEBUG_ECHO_DESCRIPTION": ""},
			stdout: "Pod is running and using debugEcho device named: \"\"\n"},
		{name: "unset", stdout: "Pod is running and using debugEcho device named: \"\"\n", warnsAbout: "DEBUG_ECHO_DESCRIPTION is not set"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr strings.Builder
			greet(func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok }, &stdout, &stderr)
			if stdout.String() != tt.stdout {
				t.Errorf("stdout %q, want %q", stdout.String(), tt.stdout)
			}
			if tt.warnsAbout == "" && stderr.Len() > 0 || !strings.Contains(stderr.String(), tt.warnsAbout) {
				t.Errorf("stderr %q, want %q", stderr.String(), tt.warnsAbout)
			}
		})
	}
}
