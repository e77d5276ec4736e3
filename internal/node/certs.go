package node

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	certsv1client "k8s.io/client-go/kubernetes/typed/certificates/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	certutil "k8s.io/client-go/util/cert"
	"k8s.io/client-go/util/certificate"
	"k8s.io/client-go/util/keyutil"

	"github.com/wasilet/wasilet/internal/atomicfile"
)

// File names under <data-dir>/pki. The kubelet-client-current.pem and
// kubelet-server-current.pem links are maintained by client-go's
// certificate.FileStore (cert and key in one file, rotated in place).
const (
	clientPairPrefix = "kubelet-client"
	serverPairPrefix = "kubelet-server"
	servingPending   = "kubelet-server-pending.key"
	selfSignedCert   = "kubelet-selfsigned.crt"
	selfSignedKey    = "kubelet-selfsigned.key"
)

// credentials are what TLS bootstrap (or a plain kubeconfig) yields.
type credentials struct {
	rest *rest.Config // the node's identity against the apiserver
	// serving returns the current serving certificate of the kubelet API.
	serving func(*tls.ClientHelloInfo) (*tls.Certificate, error)
	stop    []func()
}

func (c *credentials) Stop() {
	for _, f := range c.stop {
		f()
	}
}

// loadClient returns the node's client configuration: from a plain
// kubeconfig, or through TLS bootstrap (waiting, as long as ctx allows, for
// the client CSR to be approved and signed).
func loadClient(ctx context.Context, cfg *Config, creds *credentials) error {
	if cfg.BootstrapKubeconfig == "" {
		rc, err := clientcmd.BuildConfigFromFlags("", cfg.Kubeconfig)
		if err != nil {
			return fmt.Errorf("load kubeconfig %s: %w", cfg.Kubeconfig, err)
		}
		creds.rest = rc
		return nil
	}

	boot, err := clientcmd.BuildConfigFromFlags("", cfg.BootstrapKubeconfig)
	if err != nil {
		return fmt.Errorf("load bootstrap kubeconfig %s: %w", cfg.BootstrapKubeconfig, err)
	}
	if err := rest.LoadTLSFiles(boot); err != nil {
		return fmt.Errorf("bootstrap kubeconfig %s: %w", cfg.BootstrapKubeconfig, err)
	}
	pki := cfg.pkiDir()
	cn := "system:node:" + cfg.NodeName
	// A client certificate left by another node name is not ours.
	current := filepath.Join(pki, clientPairPrefix+"-current.pem")
	if err := dropStale(cfg, current, cn, boot.CAData, x509.ExtKeyUsageClientAuth); err != nil {
		return err
	}
	store, err := certificate.NewFileStore(clientPairPrefix, pki, pki, "", "")
	if err != nil {
		return fmt.Errorf("client certificate store in %s: %w", pki, err)
	}

	bootClient, err := kubernetes.NewForConfig(boot)
	if err != nil {
		return fmt.Errorf("bootstrap client: %w", err)
	}
	m, err := certificate.NewManager(&certificate.Config{
		ClientsetFn: func(current *tls.Certificate) (kubernetes.Interface, error) {
			if current == nil {
				return bootClient, nil
			}
			// Renewals are requested with the node's own certificate.
			c := withCertificate(boot, current)
			return kubernetes.NewForConfig(c)
		},
		Template: &x509.CertificateRequest{
			Subject: pkix.Name{CommonName: cn, Organization: []string{"system:nodes"}},
		},
		SignerName:       certificatesv1.KubeAPIServerClientKubeletSignerName,
		GetUsages:        certificate.DefaultKubeletClientGetUsages,
		CertificateStore: store,
		Name:             "kubelet-client",
	})
	if err != nil {
		return fmt.Errorf("client certificate manager: %w", err)
	}
	if m.Current() == nil {
		fmt.Fprintf(cfg.Out, "wasilet: requesting a client certificate for %s (signer %s) with the bootstrap kubeconfig; waiting for it to be approved and signed\n",
			cn, certificatesv1.KubeAPIServerClientKubeletSignerName)
	}
	m.Start()
	creds.stop = append(creds.stop, m.Stop)
	if err := waitCurrent(ctx, m, time.Minute, func() {
		cfg.Logger.Info("still waiting for the client certificate CSR to be approved and signed", "signer", certificatesv1.KubeAPIServerClientKubeletSignerName, "cn", cn)
	}); err != nil {
		return fmt.Errorf("client certificate: %w", err)
	}

	// Write the kubeconfig the node (and an operator) uses from now on: the
	// bootstrap cluster, and the rotating certificate file as the user.
	kc := clientcmdapi.NewConfig()
	kc.Clusters["default-cluster"] = &clientcmdapi.Cluster{
		Server:                   boot.Host,
		CertificateAuthorityData: boot.CAData,
		TLSServerName:            boot.ServerName,
		InsecureSkipTLSVerify:    boot.Insecure,
	}
	kc.AuthInfos["default-auth"] = &clientcmdapi.AuthInfo{ClientCertificate: current, ClientKey: current}
	kc.Contexts["default-context"] = &clientcmdapi.Context{Cluster: "default-cluster", AuthInfo: "default-auth"}
	kc.CurrentContext = "default-context"
	if err := writeKubeconfig(kc, cfg.Kubeconfig); err != nil {
		return err
	}
	rc, err := clientcmd.BuildConfigFromFlags("", cfg.Kubeconfig)
	if err != nil {
		return fmt.Errorf("load written kubeconfig %s: %w", cfg.Kubeconfig, err)
	}
	creds.rest = rc
	return nil
}

// dropStale removes a stored certificate that is for another node or not
// signed by the cluster's CA (the data directory outlived its cluster), so
// that a new one is requested instead of failing authentication forever.
func dropStale(cfg *Config, path, cn string, caPEM []byte, usage x509.ExtKeyUsage) error {
	certs, err := certutil.CertsFromFile(path)
	if err != nil || len(certs) == 0 {
		return nil // nothing stored (or unreadable: the store reports it)
	}
	reason := ""
	if certs[0].Subject.CommonName != cn {
		reason = "it is for " + certs[0].Subject.CommonName
	} else if len(caPEM) > 0 {
		pool := x509.NewCertPool()
		if pool.AppendCertsFromPEM(caPEM) {
			inter := x509.NewCertPool()
			for _, c := range certs[1:] {
				inter.AddCert(c)
			}
			if _, err := certs[0].Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
				reason = "the cluster CA does not accept it: " + err.Error()
			}
		}
	}
	if reason == "" {
		return nil
	}
	cfg.Logger.Warn("discarding stored certificate", "file", path, "reason", reason)
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("remove stale certificate %s: %w", path, err)
	}
	return nil
}

func withCertificate(base *rest.Config, c *tls.Certificate) *rest.Config {
	rc := rest.AnonymousClientConfig(base)
	var certPEM bytes.Buffer
	for _, der := range c.Certificate {
		_ = pem.Encode(&certPEM, &pem.Block{Type: "CERTIFICATE", Bytes: der})
	}
	keyPEM, err := keyutil.MarshalPrivateKeyToPEM(c.PrivateKey)
	if err == nil {
		rc.CertData = certPEM.Bytes()
		rc.KeyData = keyPEM
	}
	return rc
}

func writeKubeconfig(kc *clientcmdapi.Config, path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("write kubeconfig: %w", err)
	}
	b, err := clientcmd.Write(*kc)
	if err != nil {
		return fmt.Errorf("encode kubeconfig: %w", err)
	}
	if err := atomicfile.WriteFile(path, b, 0o600); err != nil {
		return fmt.Errorf("write kubeconfig: %w", err)
	}
	return nil
}

// waitCurrent waits until the manager has a certificate, calling nag every
// interval while it has none.
func waitCurrent(ctx context.Context, m certificate.Manager, interval time.Duration, nag func()) error {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	last := time.Now()
	for m.Current() == nil {
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case now := <-t.C:
			if now.Sub(last) >= interval {
				nag()
				last = now
			}
		}
	}
	return nil
}

// clientCA is the bundle that verifies client certificates on the kubelet
// API: --client-ca-file, or the certificate authority of the kubeconfig.
func clientCA(cfg *Config, rc *rest.Config) ([]byte, error) {
	if cfg.ClientCAFile != "" {
		b, err := os.ReadFile(cfg.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("client CA: %w", err)
		}
		if _, err := certutil.ParseCertsPEM(b); err != nil {
			return nil, fmt.Errorf("client CA %s: %w", cfg.ClientCAFile, err)
		}
		return b, nil
	}
	b := rc.CAData
	if len(b) == 0 && rc.CAFile != "" {
		var err error
		if b, err = os.ReadFile(rc.CAFile); err != nil {
			return nil, fmt.Errorf("client CA from kubeconfig: %w", err)
		}
	}
	if len(b) == 0 {
		return nil, errors.New("no client CA: the kubeconfig has no certificate-authority; give --client-ca-file")
	}
	if _, err := certutil.ParseCertsPEM(b); err != nil {
		return nil, fmt.Errorf("client CA from kubeconfig: %w", err)
	}
	return b, nil
}

// servingCertificate sets creds.serving for the configured mode. In CSR
// mode it returns at once: the certificate arrives when an admin approves
// the CSR, and until then TLS handshakes fail with a message naming it.
func servingCertificate(ctx context.Context, cfg *Config, client kubernetes.Interface, creds *credentials) error {
	if cfg.TLSCertFile != "" {
		c, err := tls.LoadX509KeyPair(cfg.TLSCertFile, cfg.TLSKeyFile)
		if err != nil {
			return fmt.Errorf("serving certificate %s: %w", cfg.TLSCertFile, err)
		}
		creds.serving = func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &c, nil }
		return nil
	}
	hostname, _ := os.Hostname()
	dnsNames := uniq(cfg.NodeName, hostname)
	ip := net.ParseIP(cfg.NodeIP)
	pki := cfg.pkiDir()

	if cfg.ServingCert == ServingCertSelfSigned {
		certFile, keyFile := filepath.Join(pki, selfSignedCert), filepath.Join(pki, selfSignedKey)
		if ok, _ := certutil.CanReadCertAndKey(certFile, keyFile); !ok {
			certPEM, keyPEM, err := certutil.GenerateSelfSignedCertKey(cfg.NodeName, []net.IP{ip}, dnsNames)
			if err != nil {
				return fmt.Errorf("self-signed serving certificate: %w", err)
			}
			if err := certutil.WriteCert(certFile, certPEM); err != nil {
				return fmt.Errorf("self-signed serving certificate: %w", err)
			}
			if err := keyutil.WriteKey(keyFile, keyPEM); err != nil {
				return fmt.Errorf("self-signed serving certificate: %w", err)
			}
		}
		c, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return fmt.Errorf("self-signed serving certificate: %w", err)
		}
		creds.serving = func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &c, nil }
		return nil
	}

	// A serving certificate of another node name is not ours. (Its CA is not
	// checked: the kubelet-serving signer need not be the kubeconfig's CA.)
	if err := dropStale(cfg, filepath.Join(pki, serverPairPrefix+"-current.pem"), "system:node:"+cfg.NodeName, nil, x509.ExtKeyUsageServerAuth); err != nil {
		return err
	}
	store, err := certificate.NewFileStore(serverPairPrefix, pki, pki, "", "")
	if err != nil {
		return fmt.Errorf("serving certificate store in %s: %w", pki, err)
	}
	pending := &pendingKey{path: filepath.Join(pki, servingPending)}
	csrName := cfg.NodeName + "-tls"
	ann := &announcer{cfg: cfg}
	named := namingClient{Interface: client, name: csrName, announce: ann.announce}
	m, err := certificate.NewManager(&certificate.Config{
		ClientsetFn: func(*tls.Certificate) (kubernetes.Interface, error) { return named, nil },
		// A template function makes the manager re-request when the node IP
		// or host name no longer match the certificate.
		GetTemplate: func() *x509.CertificateRequest {
			return &x509.CertificateRequest{
				Subject:     pkix.Name{CommonName: "system:node:" + cfg.NodeName, Organization: []string{"system:nodes"}},
				DNSNames:    dnsNames,
				IPAddresses: []net.IP{ip},
			}
		},
		SignerName:       certificatesv1.KubeletServingSignerName,
		Usages:           []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageServerAuth},
		CertificateStore: pendingStore{Store: store, pending: pending},
		GenerateKey:      pending.get,
		Name:             "kubelet-serving",
	})
	if err != nil {
		return fmt.Errorf("serving certificate manager: %w", err)
	}
	m.Start()
	creds.stop = append(creds.stop, m.Stop)
	go func() {
		// Remind the operator while the certificate is missing.
		_ = waitCurrent(ctx, m, time.Minute, ann.remind)
	}()
	creds.serving = func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
		if c := m.Current(); c != nil {
			return c, nil
		}
		if n := ann.name(); n != "" {
			return nil, fmt.Errorf("no serving certificate yet: approve it with `kubectl certificate approve %s`", n)
		}
		return nil, errors.New("no serving certificate yet: its CSR is being created")
	}
	return nil
}

func uniq(ss ...string) []string {
	var out []string
	seen := map[string]bool{}
	for _, s := range ss {
		if s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// announcer prints which serving CSR an admin must approve.
type announcer struct {
	cfg  *Config
	mu   sync.Mutex
	last string
}

func (a *announcer) announce(name string) {
	a.mu.Lock()
	a.last = name
	a.mu.Unlock()
	fmt.Fprintf(a.cfg.Out, "wasilet: the kubelet API of node %s needs its serving certificate (signer %s); an admin must approve it:\n  kubectl certificate approve %s\n",
		a.cfg.NodeName, certificatesv1.KubeletServingSignerName, name)
}

func (a *announcer) remind() {
	if n := a.name(); n != "" {
		fmt.Fprintf(a.cfg.Out, "wasilet: still waiting for serving certificate approval: kubectl certificate approve %s\n", n)
	}
}

func (a *announcer) name() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.last
}

// pendingKey keeps the private key of a serving CSR on disk until the
// certificate arrives, so that a node restarted while its CSR waits for
// approval reuses that CSR (kubectl certificate approve <node>-tls keeps
// working) instead of filing a new one.
type pendingKey struct{ path string }

func (p *pendingKey) get() (crypto.Signer, error) {
	if b, err := os.ReadFile(p.path); err == nil {
		k, err := keyutil.ParsePrivateKeyPEM(b)
		if err == nil {
			if s, ok := k.(crypto.Signer); ok {
				return s, nil
			}
		}
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	b, err := keyutil.MarshalPrivateKeyToPEM(k)
	if err != nil {
		return nil, err
	}
	if err := keyutil.WriteKey(p.path, b); err != nil {
		return nil, fmt.Errorf("store pending serving key: %w", err)
	}
	return k, nil
}

// pendingStore drops the pending key once its certificate is stored.
type pendingStore struct {
	certificate.Store
	pending *pendingKey
}

func (s pendingStore) Update(cert, key []byte) (*tls.Certificate, error) {
	c, err := s.Store.Update(cert, key)
	if err == nil {
		_ = os.Remove(s.pending.path)
	}
	return c, err
}

// namingClient gives serving CSRs a name an operator can type: <node>-tls
// (as Krustlet did), or <node>-tls-<random> when that name is taken by a
// request for another key. A pending <node>-tls for our own key is reused.
type namingClient struct {
	kubernetes.Interface
	name     string
	announce func(string)
}

func (c namingClient) CertificatesV1() certsv1client.CertificatesV1Interface {
	return namingCertificates{CertificatesV1Interface: c.Interface.CertificatesV1(), c: c}
}

type namingCertificates struct {
	certsv1client.CertificatesV1Interface
	c namingClient
}

func (n namingCertificates) CertificateSigningRequests() certsv1client.CertificateSigningRequestInterface {
	return namingCSRs{CertificateSigningRequestInterface: n.CertificatesV1Interface.CertificateSigningRequests(), c: n.c}
}

type namingCSRs struct {
	certsv1client.CertificateSigningRequestInterface
	c namingClient
}

func (n namingCSRs) Create(ctx context.Context, csr *certificatesv1.CertificateSigningRequest, opts metav1.CreateOptions) (*certificatesv1.CertificateSigningRequest, error) {
	if csr.Name != "" {
		return n.CertificateSigningRequestInterface.Create(ctx, csr, opts)
	}
	named := csr.DeepCopy()
	named.GenerateName = ""
	named.Name = n.c.name
	out, err := n.CertificateSigningRequestInterface.Create(ctx, named, opts)
	if apierrors.IsAlreadyExists(err) {
		if old, gerr := n.Get(ctx, named.Name, metav1.GetOptions{}); gerr == nil && reusable(old, named) {
			n.c.announceIfPending(old)
			return old, nil
		}
		named.Name = ""
		named.GenerateName = n.c.name + "-"
		out, err = n.CertificateSigningRequestInterface.Create(ctx, named, opts)
	}
	if err == nil {
		n.c.announceIfPending(out)
	}
	return out, err
}

func (c namingClient) announceIfPending(csr *certificatesv1.CertificateSigningRequest) {
	if len(csr.Status.Certificate) > 0 {
		return
	}
	for _, cond := range csr.Status.Conditions {
		if cond.Type == certificatesv1.CertificateApproved {
			return
		}
	}
	c.announce(csr.Name)
}

// reusable reports whether an existing CSR asks for the same thing with the
// same key and has not been refused.
func reusable(old, want *certificatesv1.CertificateSigningRequest) bool {
	if old.Spec.SignerName != want.Spec.SignerName {
		return false
	}
	for _, c := range old.Status.Conditions {
		if c.Type == certificatesv1.CertificateDenied || c.Type == certificatesv1.CertificateFailed {
			return false
		}
	}
	o, err1 := parseCSR(old.Spec.Request)
	w, err2 := parseCSR(want.Spec.Request)
	if err1 != nil || err2 != nil {
		return false
	}
	ok, ook := o.PublicKey.(interface{ Equal(crypto.PublicKey) bool })
	if !ook || !ok.Equal(w.PublicKey) {
		return false
	}
	if o.Subject.String() != w.Subject.String() {
		return false
	}
	if len(old.Status.Certificate) > 0 {
		certs, err := certutil.ParseCertsPEM(old.Status.Certificate)
		if err != nil || len(certs) == 0 || time.Now().After(certs[0].NotAfter) {
			return false
		}
	}
	return true
}

func parseCSR(b []byte) (*x509.CertificateRequest, error) {
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "CERTIFICATE REQUEST" {
		return nil, errors.New("not a PEM certificate request")
	}
	return x509.ParseCertificateRequest(block.Bytes)
}
