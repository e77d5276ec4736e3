package cluster

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/wasilet/wasilet/internal/atomicfile"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// ClusterName names the cluster in the generated kubeconfigs.
const ClusterName = "wasilet"

// kubeconfigUser is who a kubeconfig authenticates as: a client certificate
// (PEM) or a bearer token.
type kubeconfigUser struct {
	name            string
	certPEM, keyPEM []byte
	token           string
}

// writeKubeconfig writes a self-contained kubeconfig (certificates embedded)
// for server, trusting caPEM.
func writeKubeconfig(path, server string, caPEM []byte, u kubeconfigUser) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[ClusterName] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: caPEM}
	auth := &clientcmdapi.AuthInfo{Token: u.token}
	if u.certPEM != nil {
		auth.ClientCertificateData = u.certPEM
		auth.ClientKeyData = u.keyPEM
	}
	cfg.AuthInfos[u.name] = auth
	ctxName := u.name + "@" + ClusterName
	cfg.Contexts[ctxName] = &clientcmdapi.Context{Cluster: ClusterName, AuthInfo: u.name}
	cfg.CurrentContext = ctxName
	b, err := clientcmd.Write(*cfg)
	if err != nil {
		return fmt.Errorf("kubeconfig %s: %w", path, err)
	}
	return atomicfile.WriteFile(path, b, 0o600)
}

// writeCertKubeconfig writes a kubeconfig authenticating with the PKI's
// certificate pair certName/keyName.
func writeCertKubeconfig(path, server, pkiDir, certName, keyName, user string) error {
	ca, err := os.ReadFile(filepath.Join(pkiDir, CACert))
	if err != nil {
		return err
	}
	cert, err := os.ReadFile(filepath.Join(pkiDir, certName))
	if err != nil {
		return err
	}
	key, err := os.ReadFile(filepath.Join(pkiDir, keyName))
	if err != nil {
		return err
	}
	return writeKubeconfig(path, server, ca, kubeconfigUser{name: user, certPEM: cert, keyPEM: key})
}
