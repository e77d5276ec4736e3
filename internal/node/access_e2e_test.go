package node_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	certutil "k8s.io/client-go/util/cert"

	"github.com/wasilet/wasilet/internal/clustertest"
	"github.com/wasilet/wasilet/internal/nodetest"
)

// TestE2EKubeletAPIMatrix asks every route of the kubelet API as every kind
// of caller and checks the answer is the kubelet's: 401 for whoever is not
// authenticated, 403 for an authenticated caller without the route's
// nodes/<subresource> right (service accounts, this node, another node),
// and neither for a caller with it (a service account granted nodes/*, the
// admin).
func TestE2EKubeletAPIMatrix(t *testing.T) {
	n := nodetest.Shared(t)
	other := nodetest.Start(t, nodetest.Options{})
	env := n.Env
	ns := env.Namespace(t)
	ctx := context.Background()
	insecure := func(certs ...tls.Certificate) *http.Client {
		return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true, Certificates: certs}}} //nolint:gosec
	}
	fromKubeconfig := func(path string) *http.Client {
		t.Helper()
		rc, err := clientcmd.BuildConfigFromFlags("", path)
		if err != nil {
			t.Fatal(err)
		}
		tc, err := rest.TLSConfigFor(rc)
		if err != nil {
			t.Fatal(err)
		}
		tc.InsecureSkipVerify = true //nolint:gosec // the caller is what is tested
		return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: tc}}
	}
	adminTLS, err := n.AdminTLS()
	if err != nil {
		t.Fatal(err)
	}
	token := func(sa string) string {
		t.Helper()
		if _, err := env.Client.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		tr, err := env.Client.CoreV1().ServiceAccounts(ns).CreateToken(ctx, sa, &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return tr.Status.Token
	}
	role := &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: ns + "-nodes-all"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"nodes/proxy", "nodes/stats", "nodes/metrics", "nodes/log", "nodes/pods", "nodes/healthz"}, Verbs: []string{"get", "create"}}},
	}
	if _, err := env.Client.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	crb := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: role.Name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "granted", Namespace: ns}},
	}
	if _, err := env.Client.RbacV1().ClusterRoleBindings().Create(ctx, crb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = env.Client.RbacV1().ClusterRoleBindings().Delete(context.Background(), crb.Name, metav1.DeleteOptions{})
		_ = env.Client.RbacV1().ClusterRoles().Delete(context.Background(), role.Name, metav1.DeleteOptions{})
	})
	plain, granted := token("plain"), token("granted")
	foreignCert, err := selfSignedClientCert("intruder")
	if err != nil {
		t.Fatal(err)
	}

	type caller struct {
		name   string
		client *http.Client
		token  string
		want   func(code int) bool
		expect string
	}
	unauth := func(c int) bool { return c == http.StatusUnauthorized }
	forbidden := func(c int) bool { return c == http.StatusForbidden }
	allowed := func(c int) bool { return c != http.StatusUnauthorized && c != http.StatusForbidden }
	callers := []caller{
		{"anonymous", insecure(), "", unauth, "401"},
		{"bogus token", insecure(), "not-a-token", unauth, "401"},
		{"certificate of a foreign CA", insecure(foreignCert), "", unauth, "401"},
		{"service account without rights", insecure(), plain, forbidden, "403"},
		{"this node's own credentials", fromKubeconfig(filepath.Join(n.DataDir, "kubeconfig")), "", forbidden, "403"},
		{"another node", fromKubeconfig(filepath.Join(other.DataDir, "kubeconfig")), "", forbidden, "403"},
		{"service account granted nodes/*", insecure(), granted, allowed, "neither 401 nor 403"},
		{"admin", &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: adminTLS}}, "", allowed, "neither 401 nor 403"},
	}
	routes := []struct{ method, path string }{
		{http.MethodGet, "/pods"},
		{http.MethodGet, "/healthz"},
		{http.MethodGet, "/stats/summary"},
		{http.MethodGet, "/metrics"},
		{http.MethodGet, "/logs/"},
		{http.MethodGet, "/containerLogs/" + ns + "/p/c"},
		{http.MethodGet, "/runningpods/"},
		{http.MethodGet, "/configz"},
		{http.MethodPost, "/exec/" + ns + "/p/c?command=sh"},
		{http.MethodPost, "/run/" + ns + "/p/c?cmd=sh"},
		{http.MethodPost, "/attach/" + ns + "/p/c"},
		{http.MethodPost, "/portForward/" + ns + "/p"},
	}
	// RBAC for the granted account takes a moment to reach the authorizer.
	clustertest.Eventually(t, time.Minute, "granted account allowed", func() error {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+n.Addr+"/pods", nil)
		req.Header.Set("Authorization", "Bearer "+granted)
		resp, err := insecure().Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s", resp.Status)
		}
		return nil
	})
	for _, c := range callers {
		for _, r := range routes {
			req, _ := http.NewRequestWithContext(ctx, r.method, "https://"+n.Addr+r.path, nil)
			if c.token != "" {
				req.Header.Set("Authorization", "Bearer "+c.token)
			}
			resp, err := c.client.Do(req)
			if err != nil {
				t.Errorf("%s %s as %s: %v", r.method, r.path, c.name, err)
				continue
			}
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
			resp.Body.Close()
			if !c.want(resp.StatusCode) {
				t.Errorf("%s %s as %s: %s %q, want %s", r.method, r.path, c.name, resp.Status, body, c.expect)
			}
		}
	}
}

// selfSignedClientCert is a client certificate no cluster CA signed.
func selfSignedClientCert(cn string) (tls.Certificate, error) {
	certPEM, keyPEM, err := certutil.GenerateSelfSignedCertKey(cn, nil, nil)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.X509KeyPair(certPEM, keyPEM)
}
