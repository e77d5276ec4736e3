package node

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	authzv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/cache"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
)

// The kubelet's webhook defaults (KubeletConfiguration v1beta1:
// authentication.webhook.cacheTTL, authorization.webhook.cacheAuthorizedTTL
// and cacheUnauthorizedTTL), and k8s.io/apiserver's retry back-off for
// webhooks (DefaultAuthWebhookRetryBackoff).
const (
	tokenCacheTTL        = 2 * time.Minute
	tokenFailureTTL      = 10 * time.Second
	authorizedCacheTTL   = 5 * time.Minute
	unauthorizedCacheTTL = 30 * time.Second
	authCacheSize        = 4096
)

var webhookBackoff = wait.Backoff{Duration: 500 * time.Millisecond, Factor: 1.5, Jitter: 0.2, Steps: 5}

// webhookAuth authenticates and authorizes kubelet API callers the way the
// kubelet does in its webhook modes (--anonymous-auth=false,
// --authorization-mode=Webhook), delegating to the apiserver:
//
//   - a client certificate must chain to the client CA with the client-auth
//     key usage; its CommonName is the user and its Organizations the groups
//     (k8s.io/apiserver's x509 authenticator);
//   - else a bearer token is checked with a TokenReview; results are cached
//     by the token's hash, 2 minutes when it authenticated, 10 s when not;
//   - every decision is a SubjectAccessReview, cached 5 minutes when allowed
//     and 30 s when not.
//
// Transient errors of the reviews are retried with k8s.io/apiserver's
// webhook back-off and never cached. It is built on client-go alone, not
// on k8s.io/apiserver's delegating factories, whose dependencies (CEL,
// admission, encryption config) cost every wasilet process milliseconds of
// package initialisation for what are two API calls.
type webhookAuth struct {
	roots  *x509.CertPool
	client kubernetes.Interface
	now    func() time.Time
	tokens *cache.LRUExpireCache // sha256(token) → *authenticator.Response (nil: rejected)
	sars   *cache.LRUExpireCache // attributes key → sarDecision
}

type sarDecision struct {
	decision authorizer.Decision
	reason   string
}

func newWebhookAuth(client kubernetes.Interface, clientCA []byte) (*webhookAuth, error) {
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(clientCA) {
		return nil, errors.New("client CA: no PEM certificate in it")
	}
	return &webhookAuth{
		roots:  roots,
		client: client,
		now:    time.Now,
		tokens: cache.NewLRUExpireCache(authCacheSize),
		sars:   cache.NewLRUExpireCache(authCacheSize),
	}, nil
}

// AuthenticateRequest implements authenticator.Request.
func (a *webhookAuth) AuthenticateRequest(r *http.Request) (*authenticator.Response, bool, error) {
	var certErr error
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		resp, err := a.certificateUser(r.TLS.PeerCertificates)
		if err == nil {
			return resp, true, nil
		}
		certErr = err
	}
	token, ok := bearerToken(r)
	if !ok {
		if certErr != nil {
			return nil, false, certErr
		}
		return nil, false, nil
	}
	resp, ok, err := a.tokenUser(r.Context(), token)
	if err != nil || !ok {
		return nil, false, errors.Join(certErr, err)
	}
	// As k8s.io/apiserver's bearer-token authenticator: the token goes no
	// further than authentication.
	r.Header.Del("Authorization")
	return resp, true, nil
}

func (a *webhookAuth) certificateUser(chain []*x509.Certificate) (*authenticator.Response, error) {
	opts := x509.VerifyOptions{
		Roots:         a.roots,
		Intermediates: x509.NewCertPool(),
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		CurrentTime:   a.now(),
	}
	for _, c := range chain[1:] {
		opts.Intermediates.AddCert(c)
	}
	leaf := chain[0]
	if _, err := leaf.Verify(opts); err != nil {
		return nil, fmt.Errorf("client certificate %q: %w", leaf.Subject.CommonName, err)
	}
	if leaf.Subject.CommonName == "" {
		return nil, errors.New("client certificate without a common name")
	}
	return &authenticator.Response{User: &user.DefaultInfo{
		Name:   leaf.Subject.CommonName,
		Groups: slices.Clone(leaf.Subject.Organization),
	}}, nil
}

// bearerToken reads "Authorization: Bearer <token>".
func bearerToken(r *http.Request) (string, bool) {
	scheme, token, ok := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
	if !ok || !strings.EqualFold(scheme, "bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

func (a *webhookAuth) tokenUser(ctx context.Context, token string) (*authenticator.Response, bool, error) {
	key := sha256.Sum256([]byte(token))
	if v, ok := a.tokens.Get(key); ok {
		resp := v.(*authenticator.Response)
		return resp, resp != nil, nil
	}
	var review *authnv1.TokenReview
	err := retry.OnError(webhookBackoff, transient, func() error {
		var err error
		review, err = a.client.AuthenticationV1().TokenReviews().Create(ctx, &authnv1.TokenReview{Spec: authnv1.TokenReviewSpec{Token: token}}, metav1.CreateOptions{})
		return err
	})
	if err != nil {
		return nil, false, fmt.Errorf("token review: %w", err)
	}
	if !review.Status.Authenticated {
		a.tokens.Add(key, (*authenticator.Response)(nil), tokenFailureTTL)
		return nil, false, nil
	}
	u := review.Status.User
	info := &user.DefaultInfo{Name: u.Username, UID: u.UID, Groups: u.Groups}
	if len(u.Extra) > 0 {
		info.Extra = make(map[string][]string, len(u.Extra))
		for k, v := range u.Extra {
			info.Extra[k] = v
		}
	}
	resp := &authenticator.Response{User: info, Audiences: review.Status.Audiences}
	a.tokens.Add(key, resp, tokenCacheTTL)
	return resp, true, nil
}

// Authorize implements authorizer.Authorizer with a SubjectAccessReview.
func (a *webhookAuth) Authorize(ctx context.Context, attrs authorizer.Attributes) (authorizer.Decision, string, error) {
	u := attrs.GetUser()
	if u == nil {
		return authorizer.DecisionDeny, "no user", nil
	}
	spec := authzv1.SubjectAccessReviewSpec{User: u.GetName(), UID: u.GetUID(), Groups: u.GetGroups()}
	if extra := u.GetExtra(); len(extra) > 0 {
		spec.Extra = make(map[string]authzv1.ExtraValue, len(extra))
		for k, v := range extra {
			spec.Extra[k] = v
		}
	}
	if attrs.IsResourceRequest() {
		spec.ResourceAttributes = &authzv1.ResourceAttributes{
			Namespace: attrs.GetNamespace(), Verb: attrs.GetVerb(), Group: attrs.GetAPIGroup(), Version: attrs.GetAPIVersion(),
			Resource: attrs.GetResource(), Subresource: attrs.GetSubresource(), Name: attrs.GetName(),
		}
	} else {
		spec.NonResourceAttributes = &authzv1.NonResourceAttributes{Path: attrs.GetPath(), Verb: attrs.GetVerb()}
	}
	key := sarKey(spec)
	if v, ok := a.sars.Get(key); ok {
		d := v.(sarDecision)
		return d.decision, d.reason, nil
	}
	var review *authzv1.SubjectAccessReview
	err := retry.OnError(webhookBackoff, transient, func() error {
		var err error
		review, err = a.client.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authzv1.SubjectAccessReview{Spec: spec}, metav1.CreateOptions{})
		return err
	})
	if err != nil {
		return authorizer.DecisionNoOpinion, "", fmt.Errorf("subject access review: %w", err)
	}
	d := sarDecision{decision: authorizer.DecisionNoOpinion, reason: review.Status.Reason}
	switch {
	case review.Status.Allowed:
		d.decision = authorizer.DecisionAllow
		a.sars.Add(key, d, authorizedCacheTTL)
	default:
		if review.Status.Denied {
			d.decision = authorizer.DecisionDeny
		}
		a.sars.Add(key, d, unauthorizedCacheTTL)
	}
	return d.decision, d.reason, nil
}

// sarKey identifies a review: the user (with sorted groups and extra) and
// the attributes.
func sarKey(s authzv1.SubjectAccessReviewSpec) string {
	var b strings.Builder
	field := func(v string) { fmt.Fprintf(&b, "%d:%s|", len(v), v) }
	field(s.User)
	field(s.UID)
	groups := slices.Clone(s.Groups)
	sort.Strings(groups)
	for _, g := range groups {
		field(g)
	}
	b.WriteString("#")
	keys := make([]string, 0, len(s.Extra))
	for k := range s.Extra {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		field(k)
		for _, v := range s.Extra[k] {
			field(v)
		}
		b.WriteString(";")
	}
	if r := s.ResourceAttributes; r != nil {
		for _, v := range []string{"r", r.Namespace, r.Verb, r.Group, r.Version, r.Resource, r.Subresource, r.Name} {
			field(v)
		}
	}
	if n := s.NonResourceAttributes; n != nil {
		for _, v := range []string{"n", n.Path, n.Verb} {
			field(v)
		}
	}
	return b.String()
}

// transient says whether a review failed for a reason worth retrying: not
// an answer of the apiserver that the request itself is wrong.
func transient(err error) bool {
	var st apierrors.APIStatus
	if errors.As(err, &st) {
		code := st.Status().Code
		return code == 0 || code == http.StatusTooManyRequests || code >= 500
	}
	return !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
}
