package cluster_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	certutil "k8s.io/client-go/util/cert"
	"k8s.io/client-go/util/certificate/csr"

	"github.com/wasilet/wasilet/internal/cluster"
	"github.com/wasilet/wasilet/internal/clustertest"
)

// The real kubectl, through the generated admin kubeconfig, finds the
// apiserver ready.
func TestKubectlReadyz(t *testing.T) {
	env := clustertest.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := env.Kubectl(ctx, "get", "--raw", "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(string(out)) != "ok" {
		t.Fatalf("kubectl get --raw /readyz: %q, want ok", out)
	}
	// The controllers run: the kube-system namespace has its service accounts
	// (created with --use-service-account-credentials).
	out, err = env.Kubectl(ctx, "-n", "kube-system", "get", "serviceaccount", "-o", "name")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "serviceaccount/default") {
		t.Fatalf("kube-system service accounts: %s", out)
	}
}

// A node joins as a kubelet does: with the bootstrap kubeconfig it files a
// CSR for system:node:<name>, which the controller manager approves and
// signs; with that certificate it creates and reads its own Node (and may not
// create another node's).
func TestNodeTLSBootstrap(t *testing.T) {
	env := clustertest.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	bootCfg, err := clientcmd.BuildConfigFromFlags("", env.BootstrapKubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	if bootCfg.BearerToken == "" {
		t.Fatal("bootstrap kubeconfig carries no token")
	}
	boot, err := kubernetes.NewForConfig(bootCfg)
	if err != nil {
		t.Fatal(err)
	}
	// The bootstrap token can do nothing but file CSRs.
	if _, err := boot.CoreV1().Pods("default").List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Fatalf("bootstrap token listing pods: %v, want forbidden", err)
	}

	nodeName := fmt.Sprintf("e2e-node-%d", time.Now().UnixNano()%1e6)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	csrPEM, err := certutil.MakeCSR(key, &pkix.Name{CommonName: "system:node:" + nodeName, Organization: []string{"system:nodes"}}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	reqName, reqUID, err := csr.RequestCertificateWithContext(ctx, boot, csrPEM, "", certificatesv1.KubeAPIServerClientKubeletSignerName, nil,
		[]certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageClientAuth}, key)
	if err != nil {
		t.Fatalf("create CSR with the bootstrap token: %v", err)
	}
	t.Cleanup(func() {
		_ = env.Client.CertificatesV1().CertificateSigningRequests().Delete(context.Background(), reqName, metav1.DeleteOptions{})
	})
	certPEM, err := csr.WaitForCertificate(ctx, boot, reqName, reqUID)
	if err != nil {
		t.Fatalf("CSR %s not signed: %v", reqName, err)
	}
	got, err := env.Client.CertificatesV1().CertificateSigningRequests().Get(ctx, reqName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	approved := false
	for _, c := range got.Status.Conditions {
		if c.Type == certificatesv1.CertificateApproved && c.Reason == "AutoApproved" {
			approved = true
		}
	}
	if !approved {
		t.Fatalf("CSR conditions %+v, want Approved/AutoApproved", got.Status.Conditions)
	}

	// The certificate chains to the cluster CA and names the node.
	blk, _ := pem.Decode(certPEM)
	if blk == nil {
		t.Fatal("signed certificate is not PEM")
	}
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := cluster.LoadCert(filepath.Join(env.Cluster.PKIDir(), cluster.CACert))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Fatalf("node certificate does not chain to the cluster CA: %v", err)
	}
	if cert.Subject.CommonName != "system:node:"+nodeName {
		t.Fatalf("node certificate subject %v", cert.Subject)
	}

	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	nodeCfg := rest.AnonymousClientConfig(bootCfg)
	nodeCfg.CertData = certPEM
	nodeCfg.KeyData = pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	nodeClient, err := kubernetes.NewForConfig(nodeCfg)
	if err != nil {
		t.Fatal(err)
	}
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: nodeName, Labels: map[string]string{"kubernetes.io/arch": "wasm32-wasi"}}}
	if _, err := nodeClient.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
		t.Fatalf("node creates its own Node: %v", err)
	}
	t.Cleanup(func() { _ = env.Client.CoreV1().Nodes().Delete(context.Background(), nodeName, metav1.DeleteOptions{}) })
	n, err := nodeClient.CoreV1().Nodes().Get(ctx, nodeName, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("node reads its own Node: %v", err)
	}
	if n.Labels["kubernetes.io/arch"] != "wasm32-wasi" {
		t.Fatalf("node labels %v", n.Labels)
	}
	other := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: nodeName + "-other"}}
	if _, err := nodeClient.CoreV1().Nodes().Create(ctx, other, metav1.CreateOptions{}); !apierrors.IsForbidden(err) {
		_ = env.Client.CoreV1().Nodes().Delete(context.Background(), other.Name, metav1.DeleteOptions{})
		t.Fatalf("node creating another node's Node: %v, want forbidden (NodeRestriction)", err)
	}

	// The node may file a serving CSR for itself (the Node authorizer allows
	// it; approval of serving certificates is not automatic).
	servingPEM, err := certutil.MakeCSR(key, &pkix.Name{CommonName: "system:node:" + nodeName, Organization: []string{"system:nodes"}}, nil, []net.IP{net.ParseIP("127.0.0.1")})
	if err != nil {
		t.Fatal(err)
	}
	sName, _, err := csr.RequestCertificateWithContext(ctx, nodeClient, servingPEM, "", certificatesv1.KubeletServingSignerName, nil,
		[]certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageServerAuth}, key)
	if err != nil {
		t.Fatalf("node files a serving CSR: %v", err)
	}
	_ = env.Client.CertificatesV1().CertificateSigningRequests().Delete(context.Background(), sName, metav1.DeleteOptions{})
}

// The cluster's registry takes a push from the real oras CLI and serves it
// back.
func TestRegistryPushPull(t *testing.T) {
	env := clustertest.Require(t)
	oras := env.Tool("oras")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	home := t.TempDir()
	run := func(dir string, args ...string) string {
		t.Helper()
		cmd := exec.CommandContext(ctx, oras, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "HOME="+home)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("oras %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	src := t.TempDir()
	payload := make([]byte, 64<<10)
	if _, err := rand.Read(payload); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "blob.bin"), payload, 0o644); err != nil {
		t.Fatal(err)
	}
	ref := env.RegistryAddr + "/e2e/blob:v1"
	run(src, "push", "--plain-http", ref, "blob.bin")
	if tags := run(src, "repo", "tags", "--plain-http", env.RegistryAddr+"/e2e/blob"); !strings.Contains(tags, "v1") {
		t.Fatalf("tags: %q", tags)
	}
	dst := t.TempDir()
	run(dst, "pull", "--plain-http", ref)
	got, err := os.ReadFile(filepath.Join(dst, "blob.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, payload) {
		t.Fatal("pulled content differs from pushed content")
	}
}

// A cluster of its own: up, a second up reuses it, a busy port is named,
// down leaves no process and no listening port, and up starts it again from
// its state.
func TestUpReuseDownRestart(t *testing.T) {
	tools := clustertest.RequireTools(t, cluster.Tools...)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	state := t.TempDir()
	ports, err := cluster.FreeClusterPorts()
	if err != nil {
		t.Fatal(err)
	}
	o := cluster.Options{StateDir: state, ToolsDir: tools, Ports: ports, DieWithParent: true}
	t.Cleanup(func() { _ = cluster.Down(context.Background(), state) })

	start := time.Now()
	c, err := cluster.Up(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("cluster up in %s", time.Since(start).Round(100*time.Millisecond))
	if c.Reused {
		t.Fatal("first Up says Reused")
	}
	_, before, ready, err := cluster.Status(ctx, state)
	if err != nil || !ready {
		t.Fatalf("status after up: ready=%v err=%v", ready, err)
	}
	for _, s := range before {
		if !s.Running {
			t.Fatalf("%s not running after up", s.Name)
		}
	}

	c2, err := cluster.Up(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if !c2.Reused {
		t.Fatal("second Up did not reuse the running cluster")
	}
	_, after, _, err := cluster.Status(ctx, state)
	if err != nil {
		t.Fatal(err)
	}
	for i := range before {
		if before[i].PID != after[i].PID {
			t.Fatalf("%s restarted by the second Up (pid %d → %d)", before[i].Name, before[i].PID, after[i].PID)
		}
	}

	// Another cluster wanting this cluster's apiserver port.
	busy, err := cluster.FreeClusterPorts()
	if err != nil {
		t.Fatal(err)
	}
	busy.APIServer = ports.APIServer
	_, err = cluster.Up(ctx, cluster.Options{StateDir: t.TempDir(), ToolsDir: tools, Ports: busy, DieWithParent: true})
	if err == nil || !strings.Contains(err.Error(), "port "+strconv.Itoa(ports.APIServer)+" for kube-apiserver is in use") {
		t.Fatalf("Up on a busy apiserver port: %v", err)
	}

	if err := cluster.Down(ctx, state); err != nil {
		t.Fatal(err)
	}
	for _, s := range before {
		if err := syscallAlive(s.PID); err == nil {
			t.Errorf("%s (pid %d) still runs after down", s.Name, s.PID)
		}
	}
	for _, p := range []int{ports.APIServer, ports.Etcd, ports.EtcdPeer, ports.ControllerManager, ports.Scheduler, ports.Registry} {
		clustertest.RequirePortClosed(t, net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
	}
	_, comps, ready, err := cluster.Status(ctx, state)
	if err != nil || ready {
		t.Fatalf("status after down: ready=%v err=%v", ready, err)
	}
	for _, s := range comps {
		if s.Running {
			t.Errorf("status after down: %s running", s.Name)
		}
	}

	// Up again from the same state: the PKI and data are kept.
	c3, err := cluster.Up(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if c3.Reused {
		t.Fatal("Up after Down says Reused")
	}
	cs, err := c3.Client()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().Namespaces().Get(ctx, "kube-system", metav1.GetOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := cluster.Down(ctx, state); err != nil {
		t.Fatal(err)
	}
}

// syscallAlive is nil while pid exists and is not a zombie.
func syscallAlive(pid int) error {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return err
	}
	if f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:])); len(f) > 0 && (f[0] == "Z" || f[0] == "X") {
		return errors.New("zombie")
	}
	return nil
}

// Namespace gives each test its own namespace, with a default service
// account, and removes it afterwards.
func TestNamespaceHelper(t *testing.T) {
	env := clustertest.Require(t)
	var name string
	t.Run("inner", func(t *testing.T) {
		name = env.Namespace(t)
		if _, err := env.Client.CoreV1().ServiceAccounts(name).Get(context.Background(), "default", metav1.GetOptions{}); err != nil {
			t.Fatal(err)
		}
	})
	clustertest.Eventually(t, 2*time.Minute, "namespace "+name+" deleted", func() error {
		ns, err := env.Client.CoreV1().Namespaces().Get(context.Background(), name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		if ns.DeletionTimestamp != nil {
			return nil // being deleted
		}
		return fmt.Errorf("namespace still active")
	})
}
