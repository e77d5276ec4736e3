package node_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	certutil "k8s.io/client-go/util/cert"

	"github.com/wasilet/wasilet/internal/cluster"
	"github.com/wasilet/wasilet/internal/clustertest"
	"github.com/wasilet/wasilet/internal/nodetest"
)

func TestMain(m *testing.M) { nodetest.Main(m) }

// The node registers with the documented labels, taints, addresses,
// capacity and nodeInfo, keeps its Lease renewed and stays Ready.
func TestE2ERegistration(t *testing.T) {
	n := nodetest.Start(t, nodetest.Options{Args: []string{
		"--max-pods", "321", "--cpu", "3", "--memory", "2Gi", "--node-labels", "example.com/team=wasm",
	}})
	no := n.Object(t)

	for k, want := range map[string]string{
		"kubernetes.io/arch":               "wasm32-wasi",
		"kubernetes.io/os":                 "wasm32-wasi",
		"kubernetes.io/hostname":           n.Name,
		"node.kubernetes.io/instance-type": "wasm32-wasi",
		"wasilet.dev/runtime":              "wasmtime",
		"example.com/team":                 "wasm",
	} {
		if got := no.Labels[k]; got != want {
			t.Errorf("label %s = %q, want %q", k, got, want)
		}
	}
	var effects []string
	for _, taint := range no.Spec.Taints {
		if taint.Key == "kubernetes.io/arch" && taint.Value == "wasm32-wasi" {
			effects = append(effects, string(taint.Effect))
		}
	}
	if strings.Join(effects, ",") != "NoSchedule,NoExecute" {
		t.Errorf("taints %+v: want kubernetes.io/arch=wasm32-wasi NoSchedule and NoExecute", no.Spec.Taints)
	}
	addrs := map[corev1.NodeAddressType]string{}
	for _, a := range no.Status.Addresses {
		addrs[a.Type] = a.Address
	}
	if addrs[corev1.NodeInternalIP] != "127.0.0.1" || addrs[corev1.NodeHostName] == "" {
		t.Errorf("addresses %+v: want InternalIP 127.0.0.1 and a Hostname", no.Status.Addresses)
	}
	if got := no.Status.DaemonEndpoints.KubeletEndpoint.Port; int(got) != n.Port {
		t.Errorf("kubelet endpoint port %d, want %d", got, n.Port)
	}
	for _, rl := range []corev1.ResourceList{no.Status.Capacity, no.Status.Allocatable} {
		for name, want := range map[corev1.ResourceName]string{"cpu": "3", "memory": "2Gi", "pods": "321"} {
			q := rl[name]
			if q.Cmp(resource.MustParse(want)) != 0 {
				t.Errorf("%s = %s, want %s (capacity %v, allocatable %v)", name, q.String(), want, no.Status.Capacity, no.Status.Allocatable)
			}
		}
		if q := rl[corev1.ResourceEphemeralStorage]; q.Sign() <= 0 {
			t.Errorf("ephemeral-storage missing: %v", rl)
		}
	}
	ni := no.Status.NodeInfo
	if ni.Architecture != "wasm32-wasi" || ni.OperatingSystem != "wasm32-wasi" {
		t.Errorf("nodeInfo arch/os = %s/%s", ni.Architecture, ni.OperatingSystem)
	}
	if !strings.HasPrefix(ni.KubeletVersion, "v1.") || !strings.Contains(ni.KubeletVersion, "-wasilet+") {
		t.Errorf("kubeletVersion %q: want v1.x.y-wasilet+<version>", ni.KubeletVersion)
	}
	if !strings.HasPrefix(ni.ContainerRuntimeVersion, "wasmtime://") {
		t.Errorf("containerRuntimeVersion %q: want wasmtime://<version>", ni.ContainerRuntimeVersion)
	}
	conds := map[corev1.NodeConditionType]corev1.ConditionStatus{}
	for _, c := range no.Status.Conditions {
		conds[c.Type] = c.Status
	}
	for typ, want := range map[corev1.NodeConditionType]corev1.ConditionStatus{
		corev1.NodeReady: corev1.ConditionTrue, corev1.NodeMemoryPressure: corev1.ConditionFalse,
		corev1.NodeDiskPressure: corev1.ConditionFalse, corev1.NodePIDPressure: corev1.ConditionFalse,
	} {
		if conds[typ] != want {
			t.Errorf("condition %s = %q, want %s (all: %v)", typ, conds[typ], want, conds)
		}
	}

	// kubectl shows the version and the runtime.
	out := n.Kubectl(t, "get", "node", n.Name, "-o", "wide")
	if !strings.Contains(out, ni.KubeletVersion) || !strings.Contains(out, "wasmtime://") || !strings.Contains(out, "Ready") {
		t.Errorf("kubectl get node -o wide:\n%s", out)
	}

	// The Lease in kube-node-lease is held by the node and renewed.
	ctx := context.Background()
	var first time.Time
	clustertest.Eventually(t, time.Minute, "node lease", func() error {
		l, err := n.Env.Client.CoordinationV1().Leases(corev1.NamespaceNodeLease).Get(ctx, n.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity != n.Name || l.Spec.RenewTime == nil {
			return fmt.Errorf("lease spec %+v", l.Spec)
		}
		first = l.Spec.RenewTime.Time
		return nil
	})
	clustertest.Eventually(t, 2*time.Minute, "lease renewal", func() error {
		l, err := n.Env.Client.CoordinationV1().Leases(corev1.NamespaceNodeLease).Get(ctx, n.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if !l.Spec.RenewTime.Time.After(first) {
			return fmt.Errorf("renewTime still %s", l.Spec.RenewTime.Time)
		}
		return nil
	})
	n.WaitReady(t, time.Minute)
}

// TLS bootstrap: the client certificate comes from an auto-approved CSR,
// the serving CSR <node>-tls waits for an admin, and once approved the
// kubelet API serves with that certificate.
func TestE2ETLSBootstrap(t *testing.T) {
	n := nodetest.Start(t, nodetest.Options{NoApprove: true})
	ctx := context.Background()

	// Registration proves the client certificate: the node object is
	// created with the node's own identity.
	n.WaitReady(t, 2*time.Minute)
	clientCert, err := certutil.CertsFromFile(filepath.Join(n.DataDir, "pki", "kubelet-client-current.pem"))
	if err != nil {
		t.Fatalf("client certificate: %v", err)
	}
	if cn := clientCert[0].Subject.CommonName; cn != "system:node:"+n.Name {
		t.Errorf("client certificate CN %q", cn)
	}
	if o := clientCert[0].Subject.Organization; len(o) != 1 || o[0] != "system:nodes" {
		t.Errorf("client certificate O %v", o)
	}
	kc, err := os.ReadFile(filepath.Join(n.DataDir, "kubeconfig"))
	if err != nil || !bytes.Contains(kc, []byte("kubelet-client-current.pem")) {
		t.Errorf("written kubeconfig (%v):\n%s", err, kc)
	}
	csrs, err := n.Env.Client.CertificatesV1().CertificateSigningRequests().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var clientCSR *certificatesv1.CertificateSigningRequest
	for i, c := range csrs.Items {
		if c.Spec.SignerName == certificatesv1.KubeAPIServerClientKubeletSignerName && len(c.Status.Certificate) > 0 {
			if certs, err := certutil.ParseCertsPEM(c.Status.Certificate); err == nil && certs[0].Equal(clientCert[0]) {
				clientCSR = &csrs.Items[i]
			}
		}
	}
	if clientCSR == nil {
		t.Errorf("no issued %s CSR carries the node's client certificate", certificatesv1.KubeAPIServerClientKubeletSignerName)
	} else if !strings.HasPrefix(clientCSR.Spec.Username, "system:bootstrap:") {
		t.Errorf("client CSR %s requested by %q, want the bootstrap token user", clientCSR.Name, clientCSR.Spec.Username)
	}

	// The serving CSR is pending under the announced name.
	name := n.Name + "-tls"
	var csr *certificatesv1.CertificateSigningRequest
	clustertest.Eventually(t, time.Minute, "serving CSR "+name, func() error {
		csr, err = n.Env.Client.CertificatesV1().CertificateSigningRequests().Get(ctx, name, metav1.GetOptions{})
		return err
	})
	if csr.Spec.SignerName != certificatesv1.KubeletServingSignerName {
		t.Errorf("CSR %s signer %q", name, csr.Spec.SignerName)
	}
	if csr.Spec.Username != "system:node:"+n.Name {
		t.Errorf("CSR %s requested by %q, want the node", name, csr.Spec.Username)
	}
	clustertest.Eventually(t, 30*time.Second, "approval instructions in the log", func() error {
		if !strings.Contains(n.Log(), "kubectl certificate approve "+name) {
			return fmt.Errorf("log does not say `kubectl certificate approve %s`", name)
		}
		return nil
	})
	// Before approval, TLS handshakes fail.
	if conn, err := tls.Dial("tcp", n.Addr, &tls.Config{InsecureSkipVerify: true}); err == nil { //nolint:gosec
		conn.Close()
		t.Errorf("TLS handshake succeeded before the serving CSR was approved")
	}

	n.Kubectl(t, "certificate", "approve", name)
	ca, err := os.ReadFile(filepath.Join(n.Env.Cluster.PKIDir(), cluster.CACert))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	var served *x509.Certificate
	clustertest.Eventually(t, 2*time.Minute, "kubelet API serving with the approved certificate", func() error {
		// Verified against the cluster CA, for the node's IP.
		conn, err := tls.Dial("tcp", n.Addr, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
		if err != nil {
			return err
		}
		defer conn.Close()
		served = conn.ConnectionState().PeerCertificates[0]
		return nil
	})
	if served.Subject.CommonName != "system:node:"+n.Name {
		t.Errorf("serving certificate CN %q", served.Subject.CommonName)
	}
	csr, err = n.Env.Client.CertificatesV1().CertificateSigningRequests().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	issued, err := certutil.ParseCertsPEM(csr.Status.Certificate)
	if err != nil || !issued[0].Equal(served) {
		t.Errorf("the served certificate is not the one issued for CSR %s (%v)", name, err)
	}
	if !strings.Contains(strings.Join(served.DNSNames, ","), n.Name) {
		t.Errorf("serving certificate DNS names %v lack the node name", served.DNSNames)
	}

	// A restart reuses the stored certificates: no new CSR, serving at once.
	n.Restart(t)
	list, err := n.Env.Client.CertificatesV1().CertificateSigningRequests().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range list.Items {
		if strings.HasPrefix(c.Name, name+"-") {
			t.Errorf("restart filed another serving CSR %s", c.Name)
		}
	}
}

// 401 without credentials (or with a certificate of another CA), 403 for an
// identity without nodes/proxy, 200 for the admin and for a service account
// granted nodes/proxy; exec, attach and port-forward say they are not
// supported, through the real apiserver and kubectl.
func TestE2EKubeletAPIAuth(t *testing.T) {
	n := nodetest.Shared(t)
	ns := n.Env.Namespace(t)
	ctx := context.Background()
	anon := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec

	status := func(c *http.Client, path, token string) (int, string) {
		t.Helper()
		resp, err := n.Do(ctx, c, http.MethodGet, path, token)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	for _, p := range []string{"/pods", "/healthz", "/stats/summary", "/containerLogs/" + ns + "/x/y"} {
		if code, body := status(anon, p, ""); code != http.StatusUnauthorized {
			t.Errorf("anonymous GET %s: %d %s, want 401", p, code, body)
		}
	}
	if code, body := status(anon, "/pods", "not-a-token"); code != http.StatusUnauthorized {
		t.Errorf("GET /pods with a bogus token: %d %s, want 401", code, body)
	}
	// A client certificate from a CA the node does not trust.
	certPEM, keyPEM, err := certutil.GenerateSelfSignedCertKey("intruder", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	kp, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	foreign := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true, Certificates: []tls.Certificate{kp}}}} //nolint:gosec
	if code, body := status(foreign, "/pods", ""); code != http.StatusUnauthorized {
		t.Errorf("GET /pods with a foreign client certificate: %d %s, want 401", code, body)
	}

	// A service account without rights: authenticated by TokenReview, denied by SubjectAccessReview.
	token := func(sa string) string {
		t.Helper()
		if _, err := n.Env.Client.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		tr, err := n.Env.Client.CoreV1().ServiceAccounts(ns).CreateToken(ctx, sa, &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return tr.Status.Token
	}
	plain := token("plain")
	code, body := status(anon, "/pods", plain)
	if code != http.StatusForbidden {
		t.Errorf("GET /pods as a service account without rights: %d %s, want 403", code, body)
	}
	if !strings.Contains(body, "system:serviceaccount:"+ns+":plain") || !strings.Contains(body, "resource=nodes") {
		t.Errorf("403 body does not say who and what: %s", body)
	}

	// Granted nodes/proxy: allowed.
	proxier := token("proxier")
	role := &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: ns + "-nodes-proxy"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"nodes/proxy"}, Verbs: []string{"get"}}},
	}
	if _, err := n.Env.Client.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = n.Env.Client.RbacV1().ClusterRoles().Delete(context.Background(), role.Name, metav1.DeleteOptions{})
	})
	crb := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: role.Name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "proxier", Namespace: ns}},
	}
	if _, err := n.Env.Client.RbacV1().ClusterRoleBindings().Create(ctx, crb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = n.Env.Client.RbacV1().ClusterRoleBindings().Delete(context.Background(), crb.Name, metav1.DeleteOptions{})
	})
	clustertest.Eventually(t, time.Minute, "service account with nodes/proxy allowed", func() error {
		if code, body := status(anon, "/pods", proxier); code != http.StatusOK {
			return fmt.Errorf("%d %s", code, body)
		}
		return nil
	})

	// The admin (client certificate of the cluster CA).
	resp, err := n.Get(ctx, "/pods")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var pl corev1.PodList
	if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &pl) != nil {
		t.Errorf("admin GET /pods: %s %s", resp.Status, b)
	}
	for _, p := range []string{"/healthz", "/stats/summary"} {
		resp, err := n.Get(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("admin GET %s: %s", p, resp.Status)
		}
	}

	// exec/attach/port-forward: 501 with the reason, directly and through kubectl.
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "https://"+n.Addr+"/exec/"+ns+"/p/main?command=sh&output=1", nil)
	tlsCfg, err := n.AdminTLS()
	if err != nil {
		t.Fatal(err)
	}
	resp, err = (&http.Client{Transport: &http.Transport{TLSClientConfig: tlsCfg}}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotImplemented || !strings.Contains(string(b), "not supported on wasm32-wasi") {
		t.Errorf("POST /exec: %s %s, want 501 not supported on wasm32-wasi", resp.Status, b)
	}

	ref := nodetest.PushWasm(t, n.Env, nodetest.WasmFile(t, "testprog.wasm"), "testprog:auth")
	pod := n.CreatePod(t, n.Pod(ns, "target", ref, func(p *corev1.Pod) {
		p.Spec.Containers[0].Args = []string{"tick", "1s"}
	}))
	n.WaitPodPhase(t, ns, pod.Name, corev1.PodRunning, 2*time.Minute)
	// The apiserver reaches the kubelet API with its client certificate.
	clustertest.Eventually(t, time.Minute, "kubectl logs through the apiserver", func() error {
		out, err := n.Env.Kubectl(ctx, "logs", "-n", ns, pod.Name)
		if err != nil {
			return err
		}
		if !strings.Contains(string(out), "tick") {
			return fmt.Errorf("no tick yet: %q", out)
		}
		return nil
	})
	for _, args := range [][]string{
		{"exec", "-n", ns, pod.Name, "--", "sh"},
		{"attach", "-n", ns, pod.Name},
		{"port-forward", "-n", ns, "pod/" + pod.Name, "0:8080"},
	} {
		cctx, cancel := context.WithTimeout(ctx, time.Minute)
		out, err := n.Env.Kubectl(cctx, args...)
		cancel()
		if err == nil {
			t.Errorf("kubectl %s succeeded:\n%s", strings.Join(args, " "), out)
			continue
		}
		t.Logf("kubectl %s (expected to fail): %s", strings.Join(args, " "), bytes.TrimSpace(out))
		if !strings.Contains(string(out), "not supported on wasm32-wasi") {
			t.Errorf("kubectl %s: want a clear `not supported on wasm32-wasi` error, got:\n%s", strings.Join(args, " "), out)
		}
	}
}

// The control plane restarts while the node runs: the node reconnects,
// renews its Lease and is Ready again.
func TestE2EAPIServerRestart(t *testing.T) {
	n := nodetest.Start(t, nodetest.Options{})
	env := n.Env
	ctx := context.Background()

	// Pods run across the outage: one keeps running, one finishes while the
	// apiserver is down, so its status must converge after the restart.
	ns := env.Namespace(t)
	ref := nodetest.PushWasm(t, env, nodetest.WasmFile(t, "testprog.wasm"), "testprog:outage")
	running := n.CreatePod(t, n.Pod(ns, "running", ref, func(p *corev1.Pod) {
		p.Spec.Containers[0].Args = []string{"tick", "1s"}
	}))
	finishing := n.CreatePod(t, n.Pod(ns, "finishing", ref, func(p *corev1.Pod) {
		p.Spec.RestartPolicy = corev1.RestartPolicyNever
		p.Spec.Containers[0].Args = []string{"sleep", "12s", ";", "exit", "0"}
	}))
	n.WaitPodPhase(t, ns, running.Name, corev1.PodRunning, 2*time.Minute)
	n.WaitPodPhase(t, ns, finishing.Name, corev1.PodRunning, 2*time.Minute)

	pidFile := filepath.Join(env.StateDir, "run", cluster.APIServerComponent+".pid")
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatalf("apiserver pid: %v", err)
	}
	pid, err := strconv.Atoi(strings.Fields(string(b))[0])
	if err != nil {
		t.Fatalf("apiserver pid file %q: %v", b, err)
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatalf("stop apiserver: %v", err)
	}
	stopped := time.Now()
	clustertest.Eventually(t, time.Minute, "apiserver down", func() error {
		c, err := net.DialTimeout("tcp", strings.TrimPrefix(env.APIServerURL, "https://"), time.Second)
		if err == nil {
			c.Close()
			return fmt.Errorf("still listening")
		}
		return nil
	})
	// Leave the node without an apiserver for a while (its lease renewals fail).
	time.Sleep(5 * time.Second)
	// cluster.Up restarts what is not running, from the same state and ports.
	uctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	if _, err := cluster.Up(uctx, cluster.Options{
		StateDir: env.StateDir, ToolsDir: env.ToolsDir, Ports: env.Cluster.Ports,
		DieWithParent: os.Getenv(clustertest.StateEnv) == "",
	}); err != nil {
		t.Fatalf("restart control plane: %v", err)
	}
	clustertest.Eventually(t, 3*time.Minute, "lease renewed after the restart", func() error {
		l, err := env.Client.CoordinationV1().Leases(corev1.NamespaceNodeLease).Get(ctx, n.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if l.Spec.RenewTime == nil || !l.Spec.RenewTime.Time.After(stopped) {
			return fmt.Errorf("renewTime %v is before the restart", l.Spec.RenewTime)
		}
		return nil
	})
	n.WaitReady(t, 2*time.Minute)
	if !n.Running() {
		t.Fatalf("node process exited: %v", n.ExitErr())
	}
	// And it still serves its API.
	resp, err := n.Get(ctx, "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/healthz after the restart: %s", resp.Status)
	}
	// Statuses converge: the pod that ended during the outage is reported
	// Succeeded, the other is still Running, without a restart.
	p := n.WaitPodPhase(t, ns, finishing.Name, corev1.PodSucceeded, 3*time.Minute)
	if cs := p.Status.ContainerStatuses; len(cs) != 1 || cs[0].State.Terminated == nil || cs[0].State.Terminated.ExitCode != 0 {
		t.Errorf("finishing pod status after the restart: %+v", cs)
	}
	p = n.WaitPodPhase(t, ns, running.Name, corev1.PodRunning, time.Minute)
	if cs := p.Status.ContainerStatuses; len(cs) != 1 || cs[0].State.Running == nil || cs[0].RestartCount != 0 {
		t.Errorf("running pod status after the restart: %+v", cs)
	}
}

// Bad flags fail with a clear message and without starting anything.
func TestE2EBadConfig(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--node-name", "Not_A_Name", "--kubeconfig", "/dev/null"}, "not a valid DNS subdomain"},
		{[]string{"--node-name", "ok", "--data-dir", t.TempDir()}, "no credentials"},
		{[]string{"--node-name", "ok", "--kubeconfig", "x", "--node-ip", "300.1.1.1"}, "not an IP address"},
	} {
		out, err := runWasilet(t, append([]string{"node"}, tc.args...)...)
		if err == nil || !strings.Contains(out, tc.want) {
			t.Errorf("wasilet node %v: err=%v, want %q in:\n%s", tc.args, err, tc.want, out)
		}
	}
}

func runWasilet(t *testing.T, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, nodetest.Bin(t), args...).CombinedOutput()
	return string(out), err
}

// Someone deletes the node object: the node registers again, like the kubelet.
func TestE2ENodeObjectDeleted(t *testing.T) {
	n := nodetest.Start(t, nodetest.Options{})
	ctx := context.Background()
	old := n.Object(t)
	if err := n.Env.Client.CoreV1().Nodes().Delete(ctx, n.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	clustertest.Eventually(t, 3*time.Minute, "node registered again", func() error {
		no, err := n.Env.Client.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if no.UID == old.UID {
			return fmt.Errorf("still the old object")
		}
		if no.Labels["kubernetes.io/arch"] != "wasm32-wasi" || len(no.Spec.Taints) != 2 {
			return fmt.Errorf("re-registered without labels/taints: %v %v", no.Labels, no.Spec.Taints)
		}
		return nil
	})
	n.WaitReady(t, 2*time.Minute)
	since := time.Now()
	clustertest.Eventually(t, 2*time.Minute, "lease renewed for the new node object", func() error {
		l, err := n.Env.Client.CoordinationV1().Leases(corev1.NamespaceNodeLease).Get(ctx, n.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if l.Spec.RenewTime == nil || !l.Spec.RenewTime.Time.After(since) {
			return fmt.Errorf("renewTime %v", l.Spec.RenewTime)
		}
		return nil
	})
}

// A node stopped while its serving CSR waits for approval keeps the CSR's
// key: approved meanwhile, the restarted node uses that CSR's certificate
// instead of filing another one.
func TestE2EServingCSRSurvivesRestart(t *testing.T) {
	n := nodetest.Start(t, nodetest.Options{NoApprove: true})
	ctx := context.Background()
	name := n.Name + "-tls"
	n.WaitReady(t, 2*time.Minute)
	clustertest.Eventually(t, time.Minute, "serving CSR "+name, func() error {
		_, err := n.Env.Client.CertificatesV1().CertificateSigningRequests().Get(ctx, name, metav1.GetOptions{})
		return err
	})
	n.Stop(t)
	n.Kubectl(t, "certificate", "approve", name)
	n.Restart(t) // waits until the kubelet API serves

	conn, err := tls.Dial("tcp", n.Addr, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec
	if err != nil {
		t.Fatal(err)
	}
	served := conn.ConnectionState().PeerCertificates[0]
	conn.Close()
	csr, err := n.Env.Client.CertificatesV1().CertificateSigningRequests().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	issued, err := certutil.ParseCertsPEM(csr.Status.Certificate)
	if err != nil || !issued[0].Equal(served) {
		t.Errorf("the restarted node does not serve the certificate of %s (%v)", name, err)
	}
	list, err := n.Env.Client.CertificatesV1().CertificateSigningRequests().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range list.Items {
		if strings.HasPrefix(c.Name, name+"-") {
			t.Errorf("the restart filed another serving CSR %s", c.Name)
		}
	}
}
