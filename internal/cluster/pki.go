package cluster

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/wasilet/wasilet/internal/atomicfile"
)

// Validity of the generated certificates. A local cluster lives for hours;
// ten years keeps a long-lived state directory working.
const (
	caValidity   = 10 * 365 * 24 * time.Hour
	certValidity = 10 * 365 * 24 * time.Hour
)

// PKI file names under <state>/pki.
const (
	CACert               = "ca.crt"
	CAKey                = "ca.key"
	APIServerCert        = "apiserver.crt"
	APIServerKey         = "apiserver.key"
	APIServerKubeletCert = "apiserver-kubelet-client.crt"
	APIServerKubeletKey  = "apiserver-kubelet-client.key"
	FrontProxyCACert     = "front-proxy-ca.crt"
	FrontProxyCAKey      = "front-proxy-ca.key"
	FrontProxyClientCert = "front-proxy-client.crt"
	FrontProxyClientKey  = "front-proxy-client.key"
	ServiceAccountKey    = "sa.key"
	ServiceAccountPub    = "sa.pub"
	AdminCert            = "admin.crt"
	AdminKey             = "admin.key"
	ControllerMgrCert    = "controller-manager.crt"
	ControllerMgrKey     = "controller-manager.key"
	SchedulerCert        = "scheduler.crt"
	SchedulerKey         = "scheduler.key"
)

// Identities of the generated client certificates (those kubeadm uses).
const (
	AdminUser             = "kubernetes-admin"
	MastersGroup          = "system:masters"
	ControllerManagerUser = "system:kube-controller-manager"
	SchedulerUser         = "system:kube-scheduler"
	APIServerKubeletUser  = "kube-apiserver-kubelet-client"
	FrontProxyClientUser  = "front-proxy-client"
)

// APIServerSANs are the names the apiserver's serving certificate is valid
// for, besides the IPs in APIServerIPs.
var APIServerSANs = []string{
	"localhost",
	"kubernetes",
	"kubernetes.default",
	"kubernetes.default.svc",
	"kubernetes.default.svc.cluster.local",
}

// APIServerIPs are the IP SANs of the apiserver's serving certificate:
// loopback and the first address of the service range (the kubernetes
// Service).
var APIServerIPs = []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP(ServiceClusterFirstIP)}

// Service range of the cluster and the kubernetes Service's address in it.
const (
	ServiceClusterIPRange = "10.96.0.0/16"
	ServiceClusterFirstIP = "10.96.0.1"
)

// keyPair is a certificate with its private key.
type keyPair struct {
	cert *x509.Certificate
	key  crypto.Signer
}

// GeneratePKI writes the cluster's certificates and keys into dir, keeping
// every file that already exists and is valid (so a restarted cluster keeps
// its identity and its issued node certificates stay valid). The client and
// serving certificates are issued by the cluster CA; the front-proxy client
// by its own CA; the service-account key pair signs tokens.
func GeneratePKI(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	ca, err := loadOrCreateCA(dir, CACert, CAKey, "wasilet-ca")
	if err != nil {
		return fmt.Errorf("pki: cluster CA: %w", err)
	}
	fpca, err := loadOrCreateCA(dir, FrontProxyCACert, FrontProxyCAKey, "wasilet-front-proxy-ca")
	if err != nil {
		return fmt.Errorf("pki: front-proxy CA: %w", err)
	}
	leaves := []struct {
		cert, key string
		ca        *keyPair
		tmpl      x509.Certificate
	}{
		{APIServerCert, APIServerKey, ca, x509.Certificate{
			Subject:     pkix.Name{CommonName: "kube-apiserver"},
			DNSNames:    APIServerSANs,
			IPAddresses: APIServerIPs,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		}},
		{APIServerKubeletCert, APIServerKubeletKey, ca, clientTemplate(APIServerKubeletUser, MastersGroup)},
		{AdminCert, AdminKey, ca, clientTemplate(AdminUser, MastersGroup)},
		{ControllerMgrCert, ControllerMgrKey, ca, clientTemplate(ControllerManagerUser)},
		{SchedulerCert, SchedulerKey, ca, clientTemplate(SchedulerUser)},
		{FrontProxyClientCert, FrontProxyClientKey, fpca, clientTemplate(FrontProxyClientUser)},
	}
	for _, l := range leaves {
		if _, err := loadOrIssue(dir, l.cert, l.key, l.ca, l.tmpl); err != nil {
			return fmt.Errorf("pki: %s: %w", l.cert, err)
		}
	}
	if err := loadOrCreateSAKeys(dir); err != nil {
		return fmt.Errorf("pki: service-account keys: %w", err)
	}
	return nil
}

func clientTemplate(user string, groups ...string) x509.Certificate {
	return x509.Certificate{
		Subject:     pkix.Name{CommonName: user, Organization: groups},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
}

func newKey() (*ecdsa.PrivateKey, error) {
	return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
}

func serial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
}

func loadOrCreateCA(dir, certName, keyName, cn string) (*keyPair, error) {
	if kp, err := loadKeyPair(dir, certName, keyName); err == nil && kp.cert.IsCA {
		return kp, nil
	}
	key, err := newKey()
	if err != nil {
		return nil, err
	}
	sn, err := serial()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          sn,
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	kp := &keyPair{cert: cert, key: key}
	return kp, writeKeyPair(dir, certName, keyName, kp)
}

// loadOrIssue reuses dir/certName if it exists, is signed by ca and is still
// valid; otherwise it issues a new certificate from tmpl.
func loadOrIssue(dir, certName, keyName string, ca *keyPair, tmpl x509.Certificate) (*keyPair, error) {
	if kp, err := loadKeyPair(dir, certName, keyName); err == nil {
		if kp.cert.CheckSignatureFrom(ca.cert) == nil && time.Now().Before(kp.cert.NotAfter) {
			return kp, nil
		}
	}
	key, err := newKey()
	if err != nil {
		return nil, err
	}
	cert, err := issue(ca, &tmpl, key.Public())
	if err != nil {
		return nil, err
	}
	kp := &keyPair{cert: cert, key: key}
	return kp, writeKeyPair(dir, certName, keyName, kp)
}

// issue signs a leaf certificate for pub with ca.
func issue(ca *keyPair, tmpl *x509.Certificate, pub crypto.PublicKey) (*x509.Certificate, error) {
	sn, err := serial()
	if err != nil {
		return nil, err
	}
	t := *tmpl
	t.SerialNumber = sn
	now := time.Now()
	t.NotBefore = now.Add(-time.Hour)
	t.NotAfter = now.Add(certValidity)
	t.KeyUsage = x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment
	t.BasicConstraintsValid = true
	t.IsCA = false
	der, err := x509.CreateCertificate(rand.Reader, &t, ca.cert, pub, ca.key)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

func loadOrCreateSAKeys(dir string) error {
	keyPath, pubPath := filepath.Join(dir, ServiceAccountKey), filepath.Join(dir, ServiceAccountPub)
	if _, err := loadPrivateKey(keyPath); err == nil {
		if _, err := os.Stat(pubPath); err == nil {
			return nil
		}
	}
	key, err := newKey()
	if err != nil {
		return err
	}
	keyPEM, err := marshalKey(key)
	if err != nil {
		return err
	}
	pubDER, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(keyPath, keyPEM, 0o600); err != nil {
		return err
	}
	return atomicfile.WriteFile(pubPath, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o644)
}

func marshalKey(key crypto.Signer) ([]byte, error) {
	ec, ok := key.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("unsupported key type %T", key)
	}
	der, err := x509.MarshalECPrivateKey(ec)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), nil
}

func writeKeyPair(dir, certName, keyName string, kp *keyPair) error {
	keyPEM, err := marshalKey(kp.key)
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, keyName), keyPEM, 0o600); err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(dir, certName), encodeCert(kp.cert), 0o644)
}

func encodeCert(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

func loadKeyPair(dir, certName, keyName string) (*keyPair, error) {
	cert, err := LoadCert(filepath.Join(dir, certName))
	if err != nil {
		return nil, err
	}
	key, err := loadPrivateKey(filepath.Join(dir, keyName))
	if err != nil {
		return nil, err
	}
	return &keyPair{cert: cert, key: key}, nil
}

// LoadCert reads the first certificate of a PEM file.
func LoadCert(path string) (*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("%s: no PEM certificate", path)
	}
	return x509.ParseCertificate(blk.Bytes)
}

func loadPrivateKey(path string) (crypto.Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("%s: no PEM key", path)
	}
	switch blk.Type {
	case "EC PRIVATE KEY":
		return x509.ParseECPrivateKey(blk.Bytes)
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
		if err != nil {
			return nil, err
		}
		s, ok := k.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("%s: key of type %T cannot sign", path, k)
		}
		return s, nil
	}
	return nil, errors.New(path + ": unsupported PEM block " + blk.Type)
}
