package controller

import "testing"

func TestNames(t *testing.T) {
	tests := []struct {
		name, got, want string
	}{
		{"shared pod", BrokerPodName("akri-debug-echo-8120fe", "node-a", true), "node-a-akri-debug-echo-8120fe-pod"},
		{"unshared pod", BrokerPodName("akri-debug-echo-e77db4", "node-a", false), "akri-debug-echo-e77db4-pod"},
		// Upstream normalizes the Instance name only; node names stay.
		{"dots shared", BrokerPodName("cfg.v1-8120fe", "node.example", true), "node.example-cfg-v1-8120fe-pod"},
		{"dots unshared", BrokerPodName("cfg.v1-8120fe", "node.example", false), "cfg-v1-8120fe-pod"},
		{"job", BrokerJobName("cfg.v1-8120fe", 7), "cfg-v1-8120fe-7-job"},
		{"instance svc", InstanceServiceName("cfg.v1-8120fe"), "cfg-v1-8120fe-svc"},
		{"configuration svc", ConfigurationServiceName("akri-debug-echo"), "akri-debug-echo-svc"},
		{"configuration svc dots", ConfigurationServiceName("cfg.v1"), "cfg-v1-svc"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %q, want %q", tt.got, tt.want)
			}
		})
	}
}
