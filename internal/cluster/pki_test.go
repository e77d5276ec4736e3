package cluster

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

func mustCert(t *testing.T, dir, name string) *x509.Certificate {
	t.Helper()
	c, err := LoadCert(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func pool(certs ...*x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range certs {
		p.AddCert(c)
	}
	return p
}

func TestGeneratePKIChainsAndUsages(t *testing.T) {
	dir := t.TempDir()
	if err := GeneratePKI(dir); err != nil {
		t.Fatal(err)
	}
	ca := mustCert(t, dir, CACert)
	fpca := mustCert(t, dir, FrontProxyCACert)
	for _, c := range []*x509.Certificate{ca, fpca} {
		if !c.IsCA || c.KeyUsage&x509.KeyUsageCertSign == 0 {
			t.Errorf("%s: IsCA=%v usage=%v, want a signing CA", c.Subject, c.IsCA, c.KeyUsage)
		}
	}
	if ca.Subject.CommonName == fpca.Subject.CommonName {
		t.Error("front-proxy CA must be a different CA")
	}

	clients := []struct {
		file   string
		ca     *x509.Certificate
		cn     string
		groups []string
	}{
		{AdminCert, ca, AdminUser, []string{MastersGroup}},
		{ControllerMgrCert, ca, ControllerManagerUser, nil},
		{SchedulerCert, ca, SchedulerUser, nil},
		{APIServerKubeletCert, ca, APIServerKubeletUser, []string{MastersGroup}},
		{FrontProxyClientCert, fpca, FrontProxyClientUser, nil},
	}
	for _, cl := range clients {
		c := mustCert(t, dir, cl.file)
		if _, err := c.Verify(x509.VerifyOptions{Roots: pool(cl.ca), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
			t.Errorf("%s: client chain: %v", cl.file, err)
		}
		if _, err := c.Verify(x509.VerifyOptions{Roots: pool(cl.ca), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err == nil {
			t.Errorf("%s: a client certificate must not be valid for serving", cl.file)
		}
		if c.Subject.CommonName != cl.cn || !slices.Equal(c.Subject.Organization, cl.groups) {
			t.Errorf("%s: subject CN=%q O=%v, want CN=%q O=%v", cl.file, c.Subject.CommonName, c.Subject.Organization, cl.cn, cl.groups)
		}
		if c.IsCA {
			t.Errorf("%s is a CA", cl.file)
		}
	}
	// The front-proxy client must not be accepted as a cluster client.
	if _, err := mustCert(t, dir, FrontProxyClientCert).Verify(x509.VerifyOptions{Roots: pool(ca), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err == nil {
		t.Error("front-proxy client verifies against the cluster CA")
	}

	srv := mustCert(t, dir, APIServerCert)
	for _, host := range []string{"127.0.0.1", "localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local", "10.96.0.1"} {
		if _, err := srv.Verify(x509.VerifyOptions{Roots: pool(ca), DNSName: host, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
			t.Errorf("apiserver certificate for %s: %v", host, err)
		}
	}
	if err := srv.VerifyHostname("example.invalid"); err == nil {
		t.Error("apiserver certificate valid for an unrelated name")
	}
	if !slices.ContainsFunc(srv.IPAddresses, func(ip net.IP) bool { return ip.Equal(net.ParseIP("127.0.0.1")) }) {
		t.Error("apiserver certificate lacks the IP SAN 127.0.0.1")
	}

	// Service-account key pair: the public key matches the private one.
	key, err := loadPrivateKey(filepath.Join(dir, ServiceAccountKey))
	if err != nil {
		t.Fatal(err)
	}
	pubPEM, err := os.ReadFile(filepath.Join(dir, ServiceAccountPub))
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(pubPEM)
	if blk == nil || blk.Type != "PUBLIC KEY" {
		t.Fatal("sa.pub: no PUBLIC KEY block")
	}
	pub, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if !key.Public().(*ecdsa.PublicKey).Equal(pub) {
		t.Error("sa.pub does not match sa.key")
	}

	// Private keys are readable by the owner only.
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".key") {
			fi, _ := e.Info()
			if fi.Mode().Perm() != 0o600 {
				t.Errorf("%s has mode %v, want 0600", e.Name(), fi.Mode().Perm())
			}
		}
	}
}

func TestGeneratePKIKeepsValidFilesAndReissuesFromNewCA(t *testing.T) {
	dir := t.TempDir()
	if err := GeneratePKI(dir); err != nil {
		t.Fatal(err)
	}
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	admin1, ca1 := read(AdminCert), read(CACert)
	if err := GeneratePKI(dir); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(admin1, read(AdminCert)) || !bytes.Equal(ca1, read(CACert)) {
		t.Fatal("a second GeneratePKI replaced valid certificates")
	}
	// A new CA invalidates every leaf it signed: they are issued again.
	if err := os.Remove(filepath.Join(dir, CAKey)); err != nil {
		t.Fatal(err)
	}
	if err := GeneratePKI(dir); err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(ca1, read(CACert)) {
		t.Fatal("CA not regenerated after its key was removed")
	}
	ca := mustCert(t, dir, CACert)
	for _, f := range []string{AdminCert, APIServerCert, SchedulerCert} {
		if err := mustCert(t, dir, f).CheckSignatureFrom(ca); err != nil {
			t.Errorf("%s not reissued by the new CA: %v", f, err)
		}
	}
	// The front-proxy chain was untouched.
	if err := mustCert(t, dir, FrontProxyClientCert).CheckSignatureFrom(mustCert(t, dir, FrontProxyCACert)); err != nil {
		t.Error(err)
	}
}

func TestKubeconfigs(t *testing.T) {
	dir := t.TempDir()
	pki := filepath.Join(dir, "pki")
	if err := GeneratePKI(pki); err != nil {
		t.Fatal(err)
	}
	server := "https://127.0.0.1:6443"
	admin := filepath.Join(dir, "admin.kubeconfig")
	if err := writeCertKubeconfig(admin, server, pki, AdminCert, AdminKey, AdminUser); err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", admin)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Host != server {
		t.Errorf("host %q, want %q", cfg.Host, server)
	}
	caPEM, _ := os.ReadFile(filepath.Join(pki, CACert))
	certPEM, _ := os.ReadFile(filepath.Join(pki, AdminCert))
	if !bytes.Equal(cfg.CAData, caPEM) || !bytes.Equal(cfg.CertData, certPEM) || len(cfg.KeyData) == 0 {
		t.Error("admin kubeconfig does not embed the CA, certificate and key")
	}
	tlsCfg, err := rest.TLSConfigFor(cfg)
	if err != nil {
		t.Fatalf("admin kubeconfig: TLS config: %v", err)
	}
	if len(tlsCfg.Certificates) != 1 && tlsCfg.GetClientCertificate == nil {
		t.Error("admin kubeconfig: no client certificate in the TLS config")
	}
	if fi, _ := os.Stat(admin); fi.Mode().Perm() != 0o600 {
		t.Errorf("admin kubeconfig mode %v, want 0600", fi.Mode().Perm())
	}

	token, err := loadOrCreateBootstrapToken(filepath.Join(pki, "bootstrap-token"))
	if err != nil {
		t.Fatal(err)
	}
	if !tokenRE.MatchString(token) {
		t.Fatalf("bootstrap token %q has not the form [a-z0-9]{6}.[a-z0-9]{16}", token)
	}
	again, err := loadOrCreateBootstrapToken(filepath.Join(pki, "bootstrap-token"))
	if err != nil || again != token {
		t.Fatalf("bootstrap token not kept: %q then %q (%v)", token, again, err)
	}
	boot := filepath.Join(dir, "bootstrap.kubeconfig")
	if err := writeKubeconfig(boot, server, caPEM, kubeconfigUser{name: "kubelet-bootstrap", token: token}); err != nil {
		t.Fatal(err)
	}
	bcfg, err := clientcmd.BuildConfigFromFlags("", boot)
	if err != nil {
		t.Fatal(err)
	}
	if bcfg.BearerToken != token || len(bcfg.CertData) != 0 || !bytes.Equal(bcfg.CAData, caPEM) {
		t.Errorf("bootstrap kubeconfig: token %q cert %d bytes", bcfg.BearerToken, len(bcfg.CertData))
	}
}

func TestPortsValidate(t *testing.T) {
	p := DefaultPorts()
	if err := p.validate(); err != nil {
		t.Fatal(err)
	}
	p.Registry = p.APIServer
	if err := p.validate(); err == nil || !strings.Contains(err.Error(), "6443") {
		t.Fatalf("duplicate port: got %v", err)
	}
	free, err := FreeClusterPorts()
	if err != nil {
		t.Fatal(err)
	}
	if err := free.validate(); err != nil {
		t.Fatal(err)
	}
	if got := (Ports{APIServer: 7443}).withDefaults(); got.APIServer != 7443 || got.Etcd != 2379 {
		t.Fatalf("withDefaults: %+v", got)
	}
}

// A component that exits before it is ready yields an error with the tail of
// its log; a busy port is named with its component.
func TestComponentFailures(t *testing.T) {
	dir := t.TempDir()
	fake := filepath.Join(dir, "fake")
	script := "#!/bin/sh\necho starting\necho 'fatal: no such flag --frobnicate' >&2\nexit 3\n"
	if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	so := startOptions{logDir: filepath.Join(dir, "logs"), runDir: filepath.Join(dir, "run"), dieWithParent: true}
	c := &component{name: "fake-apiserver", bin: fake, ready: func(context.Context) error { return os.ErrNotExist }}
	p, err := c.start(so)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err = p.waitReady(ctx)
	if err == nil {
		t.Fatal("waitReady succeeded for a process that exited")
	}
	for _, want := range []string{"fake-apiserver exited early", "exit status 3", "fatal: no such flag --frobnicate"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	c2 := &component{name: "kube-scheduler", bin: fake, ports: []int{port}}
	_, err = c2.start(so)
	if err == nil || !strings.Contains(err.Error(), "kube-scheduler") || !strings.Contains(err.Error(), "in use") ||
		!strings.Contains(err.Error(), "port "+strconv.Itoa(port)) {
		t.Fatalf("busy port: got %v", err)
	}
}

// stopByPIDFile stops a running process and its group, and ignores pid files
// of processes that are gone (or whose pid was reused).
func TestStopByPIDFile(t *testing.T) {
	dir := t.TempDir()
	so := startOptions{logDir: dir, runDir: dir, dieWithParent: true}
	c := &component{name: "sleeper", bin: "/bin/sh", args: []string{"-c", "sleep 1000 & wait"}}
	p, err := c.start(so)
	if err != nil {
		t.Fatal(err)
	}
	pid, st, err := readPIDFile(p.pidPath)
	if err != nil || pid != p.pid || st == 0 || !alive(pid, st) {
		t.Fatalf("pid file: pid %d start %d err %v", pid, st, err)
	}
	if alive(pid, st+1) {
		t.Fatal("alive ignores the start time")
	}
	if err := stopByPIDFile(p.pidPath, "sleeper"); err != nil {
		t.Fatal(err)
	}
	<-p.exited
	if alive(pid, st) {
		t.Fatal("still alive after stop")
	}
	if _, err := os.Stat(p.pidPath); !os.IsNotExist(err) {
		t.Fatal("pid file left behind")
	}
	if err := stopByPIDFile(p.pidPath, "sleeper"); err != nil {
		t.Fatalf("second stop: %v", err)
	}
}
