package cluster

import (
	"context"
	"crypto/rand"
	"fmt"
	"math/big"
	"os"
	"regexp"
	"strings"

	"github.com/wasilet/wasilet/internal/atomicfile"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Groups and roles of TLS bootstrapping (as kubeadm sets them up).
const (
	// BootstrappersGroup is the group every bootstrap token authenticates in.
	BootstrappersGroup = "system:bootstrappers"
	// BootstrapTokenGroup is the extra group of the token this package makes.
	BootstrapTokenGroup = "system:bootstrappers:wasilet:default-node-token"
	// NodesGroup is the group of node client certificates (O=system:nodes).
	NodesGroup = "system:nodes"
)

var tokenRE = regexp.MustCompile(`^([a-z0-9]{6})\.([a-z0-9]{16})$`)

// newBootstrapToken returns a fresh "<id>.<secret>" bootstrap token.
func newBootstrapToken() (string, error) {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 23)
	for i := range b {
		if i == 6 {
			b[i] = '.'
			continue
		}
		n, err := rand.Int(rand.Reader, big.NewInt(int64(len(alphabet))))
		if err != nil {
			return "", err
		}
		b[i] = alphabet[n.Int64()]
	}
	return string(b), nil
}

// loadOrCreateBootstrapToken keeps the cluster's bootstrap token in a file so
// that a restarted cluster keeps accepting the same bootstrap kubeconfig.
func loadOrCreateBootstrapToken(path string) (string, error) {
	if b, err := os.ReadFile(path); err == nil {
		if t := strings.TrimSpace(string(b)); tokenRE.MatchString(t) {
			return t, nil
		}
	}
	t, err := newBootstrapToken()
	if err != nil {
		return "", err
	}
	return t, atomicfile.WriteFile(path, []byte(t+"\n"), 0o600)
}

// applyBootstrapObjects creates, or updates, what TLS bootstrapping needs in
// the cluster: the bootstrap token Secret, the bindings that let bootstrap
// tokens create node CSRs and have them auto-approved (nodeclient for
// bootstrappers, selfnodeclient for nodes renewing their own certificate),
// and the public cluster-info ConfigMap the bootstrap signer signs.
func applyBootstrapObjects(ctx context.Context, cs kubernetes.Interface, token, server string, caPEM []byte) error {
	m := tokenRE.FindStringSubmatch(token)
	if m == nil {
		return fmt.Errorf("bad bootstrap token format")
	}
	id, secret := m[1], m[2]
	sec := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "bootstrap-token-" + id, Namespace: metav1.NamespaceSystem},
		Type:       corev1.SecretTypeBootstrapToken,
		StringData: map[string]string{
			"description":                    "wasilet local cluster node bootstrap token",
			"token-id":                       id,
			"token-secret":                   secret,
			"usage-bootstrap-authentication": "true",
			"usage-bootstrap-signing":        "true",
			"auth-extra-groups":              BootstrapTokenGroup,
		},
	}
	if err := upsert(ctx, "secret "+sec.Name, func() error {
		_, err := cs.CoreV1().Secrets(sec.Namespace).Create(ctx, sec, metav1.CreateOptions{})
		return err
	}, func() error {
		_, err := cs.CoreV1().Secrets(sec.Namespace).Update(ctx, sec, metav1.UpdateOptions{})
		return err
	}); err != nil {
		return err
	}

	bindings := []struct{ name, role, group string }{
		{"wasilet:kubelet-bootstrap", "system:node-bootstrapper", BootstrappersGroup},
		{"wasilet:node-autoapprove-bootstrap", "system:certificates.k8s.io:certificatesigningrequests:nodeclient", BootstrappersGroup},
		{"wasilet:node-autoapprove-certificate-rotation", "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient", NodesGroup},
	}
	for _, b := range bindings {
		crb := &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: b.name},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: b.role},
			Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.GroupKind, Name: b.group}},
		}
		if err := upsert(ctx, "clusterrolebinding "+b.name, func() error {
			_, err := cs.RbacV1().ClusterRoleBindings().Create(ctx, crb, metav1.CreateOptions{})
			return err
		}, func() error {
			_, err := cs.RbacV1().ClusterRoleBindings().Update(ctx, crb, metav1.UpdateOptions{})
			return err
		}); err != nil {
			return err
		}
	}

	// cluster-info: the CA and address of the cluster, readable without
	// credentials, signed by the bootstrap signer with the token.
	ci := clientcmdapi.NewConfig()
	ci.Clusters[""] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: caPEM}
	ciBytes, err := clientcmd.Write(*ci)
	if err != nil {
		return err
	}
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "cluster-info", Namespace: metav1.NamespacePublic},
		Data:       map[string]string{"kubeconfig": string(ciBytes)},
	}
	if err := upsert(ctx, "configmap cluster-info", func() error {
		_, err := cs.CoreV1().ConfigMaps(cm.Namespace).Create(ctx, cm, metav1.CreateOptions{})
		return err
	}, func() error {
		cur, err := cs.CoreV1().ConfigMaps(cm.Namespace).Get(ctx, cm.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if cur.Data == nil {
			cur.Data = map[string]string{}
		}
		cur.Data["kubeconfig"] = cm.Data["kubeconfig"]
		_, err = cs.CoreV1().ConfigMaps(cm.Namespace).Update(ctx, cur, metav1.UpdateOptions{})
		return err
	}); err != nil {
		return err
	}
	role := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "wasilet:bootstrap-signer-clusterinfo", Namespace: metav1.NamespacePublic},
		Rules: []rbacv1.PolicyRule{{
			APIGroups: []string{""}, Resources: []string{"configmaps"},
			ResourceNames: []string{"cluster-info"}, Verbs: []string{"get"},
		}},
	}
	if err := upsert(ctx, "role "+role.Name, func() error {
		_, err := cs.RbacV1().Roles(role.Namespace).Create(ctx, role, metav1.CreateOptions{})
		return err
	}, func() error {
		_, err := cs.RbacV1().Roles(role.Namespace).Update(ctx, role, metav1.UpdateOptions{})
		return err
	}); err != nil {
		return err
	}
	rb := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: role.Name, Namespace: metav1.NamespacePublic},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: "system:anonymous"}},
	}
	return upsert(ctx, "rolebinding "+rb.Name, func() error {
		_, err := cs.RbacV1().RoleBindings(rb.Namespace).Create(ctx, rb, metav1.CreateOptions{})
		return err
	}, func() error {
		_, err := cs.RbacV1().RoleBindings(rb.Namespace).Update(ctx, rb, metav1.UpdateOptions{})
		return err
	})
}

// upsert runs create, and update when the object exists already.
func upsert(ctx context.Context, what string, create, update func() error) error {
	err := create()
	if apierrors.IsAlreadyExists(err) {
		err = update()
	}
	if err != nil {
		return fmt.Errorf("apply %s: %w", what, err)
	}
	return nil
}
