package e2e

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/wasilet/wasilet/agent"
	akri "github.com/wasilet/wasilet/agent/apis/akri/v0"
	"github.com/wasilet/wasilet/internal/akritest"
	"github.com/wasilet/wasilet/internal/clustertest"
	"github.com/wasilet/wasilet/internal/nodetest"
)

// TestTenThousandDevices: a handler streaming 10,000 devices is handled. The
// real debugEcho handler reports 10,000 descriptions in one list to the
// agent of a wasilet node; every distinct Instance name is created (the
// 3-byte hash makes a few devices share one, as upstream), the node serves
// device plugins up to the agent's cap and the rest of the Instances carry a
// Warning Event instead of exhausting the node's open files, the node keeps
// running pods, and when the devices go every Instance and plugin goes too.
func TestTenThousandDevices(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	const n = 10000
	// Enough plugins to be a real load, few enough that the node keeps
	// files for everything else on a machine with a 20,000 open-file limit.
	maxPlugins := min(4000, agent.DefaultMaxDevicePlugins())
	env := clustertest.Require(t)
	c := akritest.Client(t, env)
	ref := broker(t, env)
	dir := akritest.ShortDir(t)
	node := akriNode(t, dir, "--kube-api-qps", "1000", "--kube-api-burst", "2000",
		"--max-device-plugins", strconv.Itoa(maxPlugins))
	h := akritest.StartDebugEcho(t, dir, "debugEcho", true)
	ns := env.Namespace(t)
	ctx := context.Background()

	ids := make([]string, n)
	want := map[string]bool{}
	for i := range ids {
		ids[i] = fmt.Sprintf("dev-%05d", i)
		want[akri.InstanceName("big", ids[i], true, "")] = true
	}
	cfg := configuration(ns, "big", "debugEcho", ids, 1, ref)
	cfg.Spec.BrokerSpec, cfg.Spec.InstanceServiceSpec, cfg.Spec.ConfigurationServiceSpec = nil, nil, nil
	start := time.Now()
	if err := c.Create(ctx, cfg); err != nil {
		t.Fatal(err)
	}

	// Metadata only: 10,000 whole Instances a poll would weigh on the
	// apiserver the agent is writing to.
	instances := func(ctx context.Context) (map[string]bool, error) {
		var list metav1.PartialObjectMetadataList
		list.SetGroupVersionKind(akri.SchemeGroupVersion.WithKind("InstanceList"))
		if err := c.List(ctx, &list, client.InNamespace(ns)); err != nil {
			return nil, err
		}
		got := map[string]bool{}
		for _, in := range list.Items {
			if in.DeletionTimestamp == nil {
				got[in.Name] = true
			}
		}
		return got, nil
	}
	served := func() (int, int) {
		nd := node.Object(t)
		ok, zero := 0, 0
		for r, q := range nd.Status.Allocatable {
			if strings.HasPrefix(string(r), "akri.sh/big-") {
				if q.Value() == 1 {
					ok++
				} else {
					zero++
				}
			}
		}
		return ok, zero
	}
	poll := func(timeout time.Duration, what string, f func(ctx context.Context) error) {
		t.Helper()
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		for {
			err := f(ctx)
			if err == nil {
				return
			}
			select {
			case <-ctx.Done():
				t.Fatalf("%s: not within %s: %v", what, timeout, err)
			case <-time.After(time.Second):
			}
		}
	}

	poll(10*time.Minute, fmt.Sprintf("%d Instances", len(want)), func(ctx context.Context) error {
		got, err := instances(ctx)
		if err != nil {
			return err
		}
		if len(got) != len(want) {
			return fmt.Errorf("%d Instances", len(got))
		}
		for name := range want {
			if !got[name] {
				return fmt.Errorf("no Instance %s", name)
			}
		}
		return nil
	})
	instancesAt := time.Since(start)
	poll(5*time.Minute, fmt.Sprintf("%d device plugins allocatable", maxPlugins), func(context.Context) error {
		if ok, _ := served(); ok != maxPlugins {
			return fmt.Errorf("%d akri.sh/big-* resources allocatable", ok)
		}
		return nil
	})
	pluginsAt := time.Since(start)
	// The Instances past the cap say why they have no plugin.
	poll(2*time.Minute, "DevicePluginNotServed events", func(ctx context.Context) error {
		var evs corev1.EventList
		if err := c.List(ctx, &evs, client.InNamespace(ns)); err != nil {
			return err
		}
		found := 0
		for _, e := range evs.Items {
			if e.Reason == "DevicePluginNotServed" && strings.Contains(e.Message, "--max-device-plugins") {
				found++
			}
		}
		if found == 0 {
			return fmt.Errorf("none among %d events", len(evs.Items))
		}
		return nil
	})
	rss := nodetest.RSS(node.Pid())
	t.Logf("%d devices → %d Instances in %.1f s; %d device plugins allocatable at %.1f s; node (with its agent) RSS %d MiB, open files %d",
		n, len(want), instancesAt.Seconds(), maxPlugins, pluginsAt.Seconds(), rss>>20, nodetest.OpenFiles(node.Pid()))

	// The node still runs pods.
	p := node.Pod(ns, "alive", ref, func(p *corev1.Pod) { p.Spec.Containers[0].Args = []string{"sleep", "1h"} })
	node.CreatePod(t, p)
	node.WaitPodPhase(t, ns, p.Name, corev1.PodRunning, 2*time.Minute)

	// The devices go: every Instance and every plugin goes.
	h.SetOnline(t, false)
	gone := time.Now()
	poll(10*time.Minute, "every Instance deleted", func(ctx context.Context) error {
		got, err := instances(ctx)
		if err != nil {
			return err
		}
		if len(got) != 0 {
			return fmt.Errorf("%d Instances left", len(got))
		}
		return nil
	})
	poll(2*time.Minute, "no device plugin left", func(context.Context) error {
		if ok, _ := served(); ok != 0 {
			return fmt.Errorf("%d akri.sh/big-* resources still allocatable", ok)
		}
		return nil
	})
	t.Logf("devices gone → Instances and plugins gone in %.1f s", time.Since(gone).Seconds())
	if !node.Running() {
		t.Fatal("the node exited")
	}
}
