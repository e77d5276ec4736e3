package node

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	authzv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T, name string) testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

func (ca testCA) issue(t *testing.T, cn string, orgs []string, usage x509.ExtKeyUsage) *x509.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: cn, Organization: orgs},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return cert
}

// reviews is a fake apiserver for TokenReview and SubjectAccessReview that
// counts the calls and can fail the next ones.
type reviews struct {
	client      *fake.Clientset
	tokenCalls  atomic.Int32
	sarCalls    atomic.Int32
	failNext    atomic.Int32
	failWith    error
	lastSARSpec atomic.Pointer[authzv1.SubjectAccessReviewSpec]
}

func newReviews() *reviews {
	r := &reviews{client: fake.NewClientset()}
	fail := func() (bool, runtime.Object, error) {
		if r.failNext.Load() > 0 {
			r.failNext.Add(-1)
			return true, nil, r.failWith
		}
		return false, nil, nil
	}
	r.client.PrependReactor("create", "tokenreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		r.tokenCalls.Add(1)
		if ok, obj, err := fail(); ok {
			return ok, obj, err
		}
		tr := a.(k8stesting.CreateAction).GetObject().(*authnv1.TokenReview).DeepCopy()
		if tr.Spec.Token == "good" {
			tr.Status = authnv1.TokenReviewStatus{Authenticated: true, User: authnv1.UserInfo{
				Username: "system:serviceaccount:ns:sa", UID: "u1", Groups: []string{"system:serviceaccounts"},
				Extra: map[string]authnv1.ExtraValue{"scope": {"a"}},
			}}
		}
		return true, tr, nil
	})
	r.client.PrependReactor("create", "subjectaccessreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		r.sarCalls.Add(1)
		if ok, obj, err := fail(); ok {
			return ok, obj, err
		}
		sar := a.(k8stesting.CreateAction).GetObject().(*authzv1.SubjectAccessReview).DeepCopy()
		r.lastSARSpec.Store(&sar.Spec)
		switch {
		case sar.Spec.User == "admin":
			sar.Status = authzv1.SubjectAccessReviewStatus{Allowed: true, Reason: "admin may"}
		case sar.Spec.User == "banned":
			sar.Status = authzv1.SubjectAccessReviewStatus{Denied: true, Reason: "banned"}
		default:
			sar.Status = authzv1.SubjectAccessReviewStatus{Reason: "no rule"}
		}
		return true, sar, nil
	})
	return r
}

func TestWebhookAuthCertificates(t *testing.T) {
	ca, foreign := newTestCA(t, "cluster-ca"), newTestCA(t, "foreign-ca")
	a, err := newWebhookAuth(newReviews().client, ca.pem)
	if err != nil {
		t.Fatal(err)
	}
	req := func(certs ...*x509.Certificate) *http.Request {
		r := httptest.NewRequest("GET", "/pods", nil)
		r.TLS = &tls.ConnectionState{PeerCertificates: certs}
		return r
	}
	resp, ok, err := a.AuthenticateRequest(req(ca.issue(t, "system:admin", []string{"system:masters", "ops"}, x509.ExtKeyUsageClientAuth)))
	if err != nil || !ok {
		t.Fatalf("a client certificate of the CA: %v, %v", ok, err)
	}
	if u := resp.User; u.GetName() != "system:admin" || strings.Join(slices.Sorted(slices.Values(u.GetGroups())), ",") != "ops,system:masters" {
		t.Errorf("user %q groups %v, want the CN and the organizations", u.GetName(), u.GetGroups())
	}
	for name, cert := range map[string]*x509.Certificate{
		"foreign CA":       foreign.issue(t, "mallory", nil, x509.ExtKeyUsageClientAuth),
		"server-auth only": ca.issue(t, "server", nil, x509.ExtKeyUsageServerAuth),
	} {
		if _, ok, err := a.AuthenticateRequest(req(cert)); ok || err == nil {
			t.Errorf("%s: authenticated %v, err %v; want refused with an error", name, ok, err)
		}
	}
	if _, ok, err := a.AuthenticateRequest(httptest.NewRequest("GET", "/pods", nil)); ok || err != nil {
		t.Errorf("no credentials: %v, %v; want not authenticated, no error", ok, err)
	}
	if _, err := newWebhookAuth(newReviews().client, []byte("not pem")); err == nil {
		t.Error("a client CA without a certificate was accepted")
	}
}

func TestWebhookAuthTokens(t *testing.T) {
	rv := newReviews()
	a, err := newWebhookAuth(rv.client, newTestCA(t, "ca").pem)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	a.now = func() time.Time { return now }
	withToken := func(h string) *http.Request {
		r := httptest.NewRequest("GET", "/stats/summary", nil)
		r.Header.Set("Authorization", h)
		return r
	}
	for range 3 {
		r := withToken("Bearer good")
		resp, ok, err := a.AuthenticateRequest(r)
		if err != nil || !ok || resp.User.GetName() != "system:serviceaccount:ns:sa" || resp.User.GetUID() != "u1" || resp.User.GetExtra()["scope"][0] != "a" {
			t.Fatalf("good token: %+v, %v, %v", resp, ok, err)
		}
		if r.Header.Get("Authorization") != "" {
			t.Error("the Authorization header was passed on after authentication")
		}
	}
	if n := rv.tokenCalls.Load(); n != 1 {
		t.Errorf("%d TokenReviews for one token used three times, want 1 (cached)", n)
	}
	for range 2 {
		if _, ok, err := a.AuthenticateRequest(withToken("bearer bad")); ok || err != nil {
			t.Errorf("bad token: %v, %v; want not authenticated, no error", ok, err)
		}
	}
	if n := rv.tokenCalls.Load(); n != 2 {
		t.Errorf("%d TokenReviews, want 2 (a rejection is cached too)", n)
	}
	for _, h := range []string{"Basic abc", "Bearer", "Bearer    ", "good"} {
		if _, ok, _ := a.AuthenticateRequest(withToken(h)); ok {
			t.Errorf("Authorization %q authenticated", h)
		}
	}
	if n := rv.tokenCalls.Load(); n != 2 {
		t.Errorf("malformed Authorization headers reached TokenReview: %d calls", n)
	}

	// A transient failure is retried; an answer of the apiserver that the
	// request is wrong is not, and neither is cached.
	rv.failWith, rv.failNext = apierrors.NewServiceUnavailable("etcd down"), atomic.Int32{}
	rv.failNext.Store(1)
	webhookBackoff.Duration = time.Millisecond
	t.Cleanup(func() { webhookBackoff.Duration = 500 * time.Millisecond })
	if _, ok, err := a.AuthenticateRequest(withToken("Bearer other")); err != nil || ok {
		t.Errorf("after one 503: %v, %v; want the retry's answer (not authenticated)", ok, err)
	}
	rv.failWith = apierrors.NewForbidden(schema.GroupResource{Group: "authentication.k8s.io", Resource: "tokenreviews"}, "", errors.New("node may not review"))
	rv.failNext.Store(1)
	before := rv.tokenCalls.Load()
	if _, ok, err := a.AuthenticateRequest(withToken("Bearer third")); err == nil || ok {
		t.Errorf("a 403 from TokenReview: %v, %v; want an error", ok, err)
	}
	if n := rv.tokenCalls.Load() - before; n != 1 {
		t.Errorf("a 403 was tried %d times, want once", n)
	}
}

func TestWebhookAuthAuthorize(t *testing.T) {
	rv := newReviews()
	a, err := newWebhookAuth(rv.client, newTestCA(t, "ca").pem)
	if err != nil {
		t.Fatal(err)
	}
	attrs := func(name string) authorizer.AttributesRecord {
		return authorizer.AttributesRecord{
			User: &user.DefaultInfo{Name: name, Groups: []string{"b", "a"}, Extra: map[string][]string{"k": {"v"}}},
			Verb: "get", APIVersion: "v1", Resource: "nodes", Subresource: "stats", Name: "n1", ResourceRequest: true, Path: "/stats/summary",
		}
	}
	ctx := context.Background()
	for _, tc := range []struct {
		user   string
		want   authorizer.Decision
		reason string
	}{{"admin", authorizer.DecisionAllow, "admin may"}, {"banned", authorizer.DecisionDeny, "banned"}, {"nobody", authorizer.DecisionNoOpinion, "no rule"}} {
		for range 2 {
			d, reason, err := a.Authorize(ctx, attrs(tc.user))
			if err != nil || d != tc.want || reason != tc.reason {
				t.Errorf("%s: %v %q %v; want %v %q", tc.user, d, reason, err, tc.want, tc.reason)
			}
		}
	}
	if n := rv.sarCalls.Load(); n != 3 {
		t.Errorf("%d SubjectAccessReviews for three users asked twice, want 3 (cached)", n)
	}
	spec := rv.lastSARSpec.Load()
	if ra := spec.ResourceAttributes; ra == nil || ra.Verb != "get" || ra.Resource != "nodes" || ra.Subresource != "stats" || ra.Name != "n1" || ra.Version != "v1" || spec.Extra["k"][0] != "v" {
		t.Errorf("review spec %+v", spec)
	}
	// Group order does not make a new review.
	other := attrs("admin")
	other.User = &user.DefaultInfo{Name: "admin", Groups: []string{"a", "b"}, Extra: map[string][]string{"k": {"v"}}}
	if _, _, err := a.Authorize(ctx, other); err != nil || rv.sarCalls.Load() != 3 {
		t.Errorf("the same user with groups reordered: %v, %d reviews", err, rv.sarCalls.Load())
	}
	// Another subresource does.
	logs := attrs("admin")
	logs.Subresource = "log"
	if _, _, err := a.Authorize(ctx, logs); err != nil || rv.sarCalls.Load() != 4 {
		t.Errorf("another subresource: %v, %d reviews", err, rv.sarCalls.Load())
	}
}
