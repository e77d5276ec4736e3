package node

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"

	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"golang.org/x/time/rate"
	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/client-go/kubernetes/fake"
	certutil "k8s.io/client-go/util/cert"
)

func testConfig(t *testing.T) *Config {
	t.Helper()
	c := &Config{
		NodeName:    "n1",
		NodeIP:      "127.0.0.1",
		DataDir:     t.TempDir(),
		Kubeconfig:  "/dev/null",
		CPU:         resource.MustParse("2"),
		Memory:      resource.MustParse("1Gi"),
		MaxPods:     7,
		Labels:      map[string]string{"kubernetes.io/arch": "amd64", "example.com/x": "y"},
		NewProvider: func(context.Context, ProviderConfig) (Provider, error) { return nil, nil },
		Logger:      slog.New(slog.DiscardHandler),
	}
	if err := c.Complete(); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestBaseNode(t *testing.T) {
	c := testConfig(t)
	n := newStatusProvider(c).initial()
	for k, want := range map[string]string{
		"kubernetes.io/arch": "wasm32-wasi", "kubernetes.io/os": "wasm32-wasi",
		"kubernetes.io/hostname": "n1", "wasilet.dev/runtime": "wasmtime",
		"node.kubernetes.io/instance-type": "wasm32-wasi", "example.com/x": "y",
	} {
		if n.Labels[k] != want {
			t.Errorf("label %s=%q, want %q (user labels must not override)", k, n.Labels[k], want)
		}
	}
	if len(n.Spec.Taints) != 2 || n.Spec.Taints[0].Effect != corev1.TaintEffectNoSchedule || n.Spec.Taints[1].Effect != corev1.TaintEffectNoExecute {
		t.Errorf("taints %+v", n.Spec.Taints)
	}
	if q := n.Status.Capacity[corev1.ResourcePods]; q.Value() != 7 {
		t.Errorf("pods capacity %s", q.String())
	}
	if !strings.HasPrefix(n.Status.NodeInfo.KubeletVersion, "v1.37.") || !strings.Contains(n.Status.NodeInfo.KubeletVersion, "-wasilet+") {
		t.Errorf("kubelet version %q", n.Status.NodeInfo.KubeletVersion)
	}
	types := map[corev1.NodeConditionType]bool{}
	for _, cond := range n.Status.Conditions {
		types[cond.Type] = true
	}
	for _, want := range []corev1.NodeConditionType{corev1.NodeReady, corev1.NodeMemoryPressure, corev1.NodeDiskPressure, corev1.NodePIDPressure} {
		if !types[want] {
			t.Errorf("condition %s missing", want)
		}
	}
}

func TestSemverBuild(t *testing.T) {
	for in, want := range map[string]string{"v0.1.0-dev": "v0.1.0-dev", "26dbc76-dirty": "26dbc76-dirty", "a+b/c": "a-b-c", "": "unknown"} {
		if got := semverBuild(in); got != want {
			t.Errorf("semverBuild(%q)=%q, want %q", in, got, want)
		}
	}
}

func TestExtendedResourcesAndUpdates(t *testing.T) {
	c := testConfig(t)
	count := int64(0)
	c.ExtendedResources = func() (corev1.ResourceList, corev1.ResourceList) {
		return corev1.ResourceList{"akri.sh/dev": *resource.NewQuantity(count, resource.DecimalSI)},
			corev1.ResourceList{"akri.sh/dev": *resource.NewQuantity(count, resource.DecimalSI)}
	}
	updates := make(chan struct{})
	c.ResourceUpdates = updates
	p := newStatusProvider(c)
	got := make(chan *corev1.Node, 4)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p.NotifyNodeStatus(ctx, func(n *corev1.Node) { got <- n })

	count = 2
	updates <- struct{}{}
	select {
	case n := <-got:
		for _, rl := range []corev1.ResourceList{n.Status.Capacity, n.Status.Allocatable} {
			if q := rl["akri.sh/dev"]; q.Value() != 2 {
				t.Errorf("akri.sh/dev = %s, want 2", q.String())
			}
			if q := rl[corev1.ResourceCPU]; q.Cmp(resource.MustParse("2")) != 0 {
				t.Errorf("cpu = %s", q.String())
			}
		}
		if n.Labels[LabelArch] != Arch {
			t.Errorf("status update lost the labels: %v", n.Labels)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no status update after a resource update")
	}
}

// TestResourceUpdatesPaced: the first changes after a quiet spell (a
// plugin registering, then its devices) are each sent at once; past the
// burst, changes wait for the pace and are sent together.
func TestResourceUpdatesPaced(t *testing.T) {
	c := testConfig(t)
	count := int64(0)
	c.ExtendedResources = func() (corev1.ResourceList, corev1.ResourceList) {
		q := *resource.NewQuantity(count, resource.DecimalSI)
		return corev1.ResourceList{"akri.sh/dev": q}, corev1.ResourceList{"akri.sh/dev": q}
	}
	updates := make(chan struct{})
	c.ResourceUpdates = updates
	p := newStatusProvider(c)
	p.pace = rate.NewLimiter(rate.Every(time.Hour), resourceUpdateBurst) // no refill within the test
	got := make(chan *corev1.Node, 2*resourceUpdateBurst)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p.NotifyNodeStatus(ctx, func(n *corev1.Node) { got <- n })

	for i := range resourceUpdateBurst {
		count = int64(i + 1)
		updates <- struct{}{}
		select {
		case n := <-got:
			if q := n.Status.Allocatable["akri.sh/dev"]; q.Value() != count {
				t.Fatalf("update %d: akri.sh/dev = %s, want %d", i, q.String(), count)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("change %d of the burst was not sent", i)
		}
	}
	count = 99
	updates <- struct{}{}
	updates <- struct{}{} // the loop took the first: this one waits behind it
	select {
	case n := <-got:
		t.Fatalf("a change past the burst was sent at once (akri.sh/dev %v)", n.Status.Allocatable["akri.sh/dev"])
	case <-time.After(200 * time.Millisecond):
	}
}

func TestConditionTransitionTimeKept(t *testing.T) {
	c := testConfig(t)
	p := newStatusProvider(c)
	first := p.initial()
	time.Sleep(1100 * time.Millisecond)
	second := p.compute(time.Now())
	for i, cond := range second.Status.Conditions {
		if !cond.LastTransitionTime.Equal(&first.Status.Conditions[i].LastTransitionTime) {
			t.Errorf("%s transition time moved without a status change", cond.Type)
		}
		if !cond.LastHeartbeatTime.After(first.Status.Conditions[i].LastHeartbeatTime.Time) {
			t.Errorf("%s heartbeat did not move", cond.Type)
		}
	}
}

// A failing health check turns Ready False with its name and error, and
// back to True (with a new transition time) when it passes again.
func TestReadyFollowsHealthChecks(t *testing.T) {
	c := testConfig(t)
	var broken error
	c.HealthChecks = []HealthCheck{{Name: "runtime", Check: func() error { return broken }}}
	p := newStatusProvider(c)
	ready := func() corev1.NodeCondition {
		t.Helper()
		p.checkHealth()
		n := p.compute(time.Now())
		p.last = n
		for _, cond := range n.Status.Conditions {
			if cond.Type == corev1.NodeReady {
				return cond
			}
		}
		t.Fatal("no Ready condition")
		return corev1.NodeCondition{}
	}
	if r := ready(); r.Status != corev1.ConditionTrue || r.Reason != "KubeletReady" {
		t.Fatalf("healthy: %+v", r)
	}
	broken = errors.New("wasmtime engine closed")
	r := ready()
	if r.Status != corev1.ConditionFalse || r.Reason != "KubeletNotReady" || r.Message != "runtime: wasmtime engine closed" {
		t.Fatalf("broken runtime: %+v", r)
	}
	down := r.LastTransitionTime
	time.Sleep(1100 * time.Millisecond)
	broken = nil
	if r := ready(); r.Status != corev1.ConditionTrue || !r.LastTransitionTime.After(down.Time) {
		t.Fatalf("fixed: %+v (went False at %v)", r, down)
	}
}

func TestCompleteErrors(t *testing.T) {
	base := func() Config {
		return Config{NodeName: "n", Kubeconfig: "k", DataDir: t.TempDir(), CPU: resource.MustParse("1"), Memory: resource.MustParse("1Gi"),
			NewProvider: func(context.Context, ProviderConfig) (Provider, error) { return nil, nil }}
	}
	for _, tc := range []struct {
		mut  func(*Config)
		want string
	}{
		{func(c *Config) { c.NodeName = "Bad_Name" }, "not a valid DNS subdomain"},
		{func(c *Config) { c.Kubeconfig = "" }, "no credentials"},
		{func(c *Config) { c.NodeIP = "nope" }, "not an IP address"},
		{func(c *Config) { c.Port = 70000 }, "out of range"},
		{func(c *Config) { c.TLSCertFile = "x" }, "go together"},
		{func(c *Config) { c.MaxPods = -1 }, "negative"},
		{func(c *Config) { c.Labels = map[string]string{"bad key!": "v"} }, "label key"},
		{func(c *Config) { c.NewProvider = nil }, "no pod provider"},
		{func(c *Config) { c.Labels = map[string]string{"node-role.kubernetes.io/worker": ""} }, "NodeRestriction"},
		{func(c *Config) { c.ServingCert = "magic" }, "serving certificate mode"},
	} {
		c := base()
		tc.mut(&c)
		err := c.Complete()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Complete: %v, want %q", err, tc.want)
		}
	}
	c := base()
	c.Labels = map[string]string{"example.com/a": "b", "topology.kubernetes.io/zone": "z", "node.kubernetes.io/pool": "p", "sub.kubelet.kubernetes.io/x": "y"}
	if err := c.Complete(); err != nil {
		t.Errorf("allowed labels refused: %v", err)
	}
	c = base()
	c.Kubeconfig = ""
	c.BootstrapKubeconfig = "b"
	if err := c.Complete(); err != nil || c.Kubeconfig != c.DataDir+"/kubeconfig" || c.Port != DefaultPort || c.MaxPods != DefaultMaxPods {
		t.Errorf("defaults: err=%v kubeconfig=%q port=%d pods=%d", err, c.Kubeconfig, c.Port, c.MaxPods)
	}
}

func TestRequestAttributes(t *testing.T) {
	u := &user.DefaultInfo{Name: "u"}
	for path, want := range map[string]string{
		"/stats/summary":         "stats",
		"/metrics/resource":      "metrics",
		"/logs/":                 "log",
		"/healthz":               "healthz|proxy",
		"/pods":                  "pods|proxy",
		"/containerLogs/a/b/c":   "proxy",
		"/exec/a/b/c":            "proxy",
		"/statsX":                "proxy",
		"/podsomething/anything": "proxy",
	} {
		r := httptest.NewRequest(http.MethodGet, path, nil)
		attrs := requestAttributes(u, r, "n1")
		if got := subresources(attrs); got != want {
			t.Errorf("%s: subresources %q, want %q", path, got, want)
		}
		if attrs[0].Name != "n1" || attrs[0].Resource != "nodes" || attrs[0].Verb != "get" {
			t.Errorf("%s: attrs %+v", path, attrs[0])
		}
	}
	r := httptest.NewRequest(http.MethodPost, "/exec/a/b/c", nil)
	if v := requestAttributes(u, r, "n1")[0].Verb; v != "create" {
		t.Errorf("POST verb %q", v)
	}
}

type fakeAuthn struct{ user user.Info }

func (f fakeAuthn) AuthenticateRequest(*http.Request) (*authenticator.Response, bool, error) {
	if f.user == nil {
		return nil, false, nil
	}
	return &authenticator.Response{User: f.user}, true, nil
}

type fakeAuthz struct{ allow map[string]bool }

func (f fakeAuthz) Authorize(_ context.Context, a authorizer.Attributes) (authorizer.Decision, string, error) {
	if f.allow[a.GetUser().GetName()+"/"+a.GetSubresource()] {
		return authorizer.DecisionAllow, "", nil
	}
	return authorizer.DecisionNoOpinion, "no rule", nil
}

func TestAuthHandler(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/pods", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("pods")) })
	mux.Handle("/exec/", notSupported(unsupported["exec"]))
	serve := func(u user.Info, method, path string) *httptest.ResponseRecorder {
		h := &authHandler{authn: fakeAuthn{u}, authz: fakeAuthz{map[string]bool{"admin/proxy": true, "podreader/pods": true}},
			nodeName: "n1", next: mux, logger: slog.New(slog.DiscardHandler)}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(method, path, nil))
		return w
	}
	if w := serve(nil, "GET", "/pods"); w.Code != http.StatusUnauthorized {
		t.Errorf("anonymous: %d", w.Code)
	}
	w := serve(&user.DefaultInfo{Name: "nobody"}, "GET", "/pods")
	if w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), "user=nobody") || !strings.Contains(w.Body.String(), "subresource=pods|proxy") {
		t.Errorf("nobody: %d %s", w.Code, w.Body)
	}
	if w := serve(&user.DefaultInfo{Name: "podreader"}, "GET", "/pods"); w.Code != http.StatusOK {
		t.Errorf("podreader (nodes/pods): %d %s", w.Code, w.Body)
	}
	if w := serve(&user.DefaultInfo{Name: "admin"}, "GET", "/pods"); w.Code != http.StatusOK {
		t.Errorf("admin (nodes/proxy fallback): %d", w.Code)
	}
	w = serve(&user.DefaultInfo{Name: "admin"}, "POST", "/exec/ns/p/c")
	var st metav1.Status
	if w.Code != http.StatusNotImplemented || json.Unmarshal(w.Body.Bytes(), &st) != nil || !strings.Contains(st.Message, "not supported on wasm32-wasi") || st.Code != 501 {
		t.Errorf("exec: %d %s", w.Code, w.Body)
	}
	if w := serve(nil, "POST", "/exec/ns/p/c"); w.Code != http.StatusUnauthorized {
		t.Errorf("anonymous exec must be 401 before 501: %d", w.Code)
	}
}

func csrFor(t *testing.T, key *ecdsa.PrivateKey) *certificatesv1.CertificateSigningRequest {
	t.Helper()
	der, err := certutil.MakeCSRFromTemplate(key, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "system:node:n1", Organization: []string{"system:nodes"}}})
	if err != nil {
		t.Fatal(err)
	}
	return &certificatesv1.CertificateSigningRequest{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "csr-"},
		Spec:       certificatesv1.CertificateSigningRequestSpec{Request: der, SignerName: certificatesv1.KubeletServingSignerName},
	}
}

func TestNamingClient(t *testing.T) {
	cs := fake.NewClientset()
	var announced []string
	c := namingClient{Interface: cs, name: "n1-tls", announce: func(n string) { announced = append(announced, n) }}
	csrs := c.CertificatesV1().CertificateSigningRequests()
	ctx := context.Background()
	k1, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)

	out, err := csrs.Create(ctx, csrFor(t, k1), metav1.CreateOptions{})
	if err != nil || out.Name != "n1-tls" {
		t.Fatalf("first CSR: %v %v", out, err)
	}
	// Same key again (a restart while pending): the pending CSR is reused.
	again, err := csrs.Create(ctx, csrFor(t, k1), metav1.CreateOptions{})
	if err != nil || again.Name != "n1-tls" {
		t.Fatalf("same key: %v %v", again, err)
	}
	// Another key: not the same request, so not n1-tls.
	k2, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	other, err := csrs.Create(ctx, csrFor(t, k2), metav1.CreateOptions{})
	if err == nil && other.Name == "n1-tls" {
		t.Fatalf("a CSR for another key reused n1-tls")
	}
	if len(announced) < 2 || announced[0] != "n1-tls" {
		t.Errorf("announced %v", announced)
	}
	// A denied CSR is never reused.
	denied := out.DeepCopy()
	denied.Status.Conditions = []certificatesv1.CertificateSigningRequestCondition{{Type: certificatesv1.CertificateDenied, Status: corev1.ConditionTrue}}
	if reusable(denied, csrFor(t, k1)) {
		t.Errorf("denied CSR reusable")
	}
	if !reusable(out, csrFor(t, k1)) {
		t.Errorf("pending CSR for the same key not reusable")
	}
}

func TestDropStale(t *testing.T) {
	c := testConfig(t)
	newCA := func(name string) (*x509.Certificate, *ecdsa.PrivateKey, []byte) {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		ca, err := certutil.NewSelfSignedCACert(certutil.Config{CommonName: name}, k)
		if err != nil {
			t.Fatal(err)
		}
		return ca, k, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Raw})
	}
	ca1, k1, ca1PEM := newCA("ca1")
	_, _, ca2PEM := newCA("ca2")
	leafKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "system:node:n1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca1, leafKey.Public(), k1)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "kubelet-client-current.pem")
	write := func() {
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	exists := func() bool { _, err := os.Stat(path); return err == nil }

	write()
	if err := dropStale(c, path, "system:node:n1", ca1PEM, x509.ExtKeyUsageClientAuth); err != nil || !exists() {
		t.Errorf("valid certificate dropped (%v)", err)
	}
	if err := dropStale(c, path, "system:node:n1", ca2PEM, x509.ExtKeyUsageClientAuth); err != nil || exists() {
		t.Errorf("certificate of another CA kept (%v)", err)
	}
	write()
	if err := dropStale(c, path, "system:node:n2", ca1PEM, x509.ExtKeyUsageClientAuth); err != nil || exists() {
		t.Errorf("certificate of another node kept (%v)", err)
	}
	if err := dropStale(c, path, "system:node:n1", ca1PEM, x509.ExtKeyUsageClientAuth); err != nil {
		t.Errorf("missing file: %v", err)
	}
}
