package node

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/virtual-kubelet/virtual-kubelet/node/api"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/client-go/kubernetes"
	"log/slog"
)

// The kubelet HTTP API. Routes come from virtual-kubelet's api.PodHandler
// (/pods, /containerLogs/{ns}/{pod}/{container}, /stats/summary,
// /metrics/resource), served by the provider; wasilet adds /healthz and
// answers /exec, /attach and /portForward itself, before any stream upgrade,
// with 501 and a Status saying why (a Wasm guest has no process to enter and
// no network namespace to forward into), which kubectl prints as is.
//
// Every route, /healthz included, is authenticated and authorized like the
// kubelet's (--anonymous-auth=false, --authorization-mode=Webhook):
//   - client certificates verified against the client CA, and bearer
//     tokens through TokenReview (webhookAuth, webhookauth.go);
//   - SubjectAccessReview for verb <http verb> on nodes/<subresource> named
//     after the node: stats, metrics, log, healthz, pods, else proxy
//     (healthz and pods fall back to proxy, as the kubelet's fine-grained
//     authorization does).
//
// No credentials → 401; credentials without the right → 403.

// unsupported lists the streaming routes a wasm32-wasi node refuses.
var unsupported = map[string]string{
	"exec":        "exec is not supported on wasm32-wasi nodes: a WebAssembly container has no shell or process to run a command in",
	"attach":      "attach is not supported on wasm32-wasi nodes: a WebAssembly container's stdin is not attachable; use kubectl logs -f to follow its output",
	"portForward": "port-forward is not supported on wasm32-wasi nodes: WebAssembly pods have no network namespace to forward into",
}

// authConfig is what the handler needs to authenticate and authorize.
type authConfig struct {
	client   kubernetes.Interface
	nodeName string
	clientCA []byte
	logger   *slog.Logger
}

func newHandler(p Provider, podsFromKubernetes api.PodListerFunc, ac authConfig) (http.Handler, error) {
	auth, err := newWebhookAuth(ac.client, ac.clientCA)
	if err != nil {
		return nil, fmt.Errorf("kubelet API authentication: %w", err)
	}

	routes := api.PodHandler(api.PodHandlerConfig{
		RunInContainer:        p.RunInContainer,
		AttachToContainer:     p.AttachToContainer,
		PortForward:           p.PortForward,
		GetContainerLogs:      p.GetContainerLogs,
		GetPods:               p.GetPods,
		GetPodsFromKubernetes: podsFromKubernetes,
		GetStatsSummary:       p.GetStatsSummary,
		GetMetricsResource:    p.GetMetricsResource,
		StreamIdleTimeout:     4 * time.Hour,
		StreamCreationTimeout: 30 * time.Second,
	}, false)

	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok"))
	})
	for route, msg := range unsupported {
		mux.Handle("/"+route+"/", notSupported(msg))
	}
	mux.Handle("/", routes)
	return &authHandler{authn: auth, authz: auth, nodeName: ac.nodeName, next: mux, logger: ac.logger}, nil
}

func notSupported(msg string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeStatus(w, http.StatusNotImplemented, "NotImplemented", msg)
	})
}

// writeStatus answers with a metav1.Status, the body the apiserver and
// client-go decode into the error message users see.
func writeStatus(w http.ResponseWriter, code int, reason metav1.StatusReason, msg string) {
	st := metav1.Status{
		TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"},
		Status:   metav1.StatusFailure,
		Message:  msg,
		Reason:   reason,
		Code:     int32(code),
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(st)
}

type authHandler struct {
	authn    authenticator.Request
	authz    authorizer.UnconditionalAuthorizer
	nodeName string
	next     http.Handler
	logger   *slog.Logger
}

func (h *authHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	resp, ok, err := h.authn.AuthenticateRequest(r)
	if err != nil || !ok {
		if err != nil {
			h.logger.Debug("kubelet API: authentication failed", "path", r.URL.Path, "err", err)
		}
		writeStatus(w, http.StatusUnauthorized, metav1.StatusReasonUnauthorized, "Unauthorized: the kubelet API needs a client certificate signed by the cluster CA or a bearer token")
		return
	}
	u := resp.User
	// The authenticator strips the Authorization header on success; keep
	// nothing else from it.
	var lastReason string
	for _, attrs := range requestAttributes(u, r, h.nodeName) {
		decision, reason, err := h.authz.Authorize(r.Context(), attrs)
		if err != nil {
			h.logger.Warn("kubelet API: authorization failed", "user", u.GetName(), "path", r.URL.Path, "err", err)
			writeStatus(w, http.StatusInternalServerError, metav1.StatusReasonInternalError,
				fmt.Sprintf("authorization of user %s failed: %v", u.GetName(), err))
			return
		}
		if decision == authorizer.DecisionAllow {
			h.next.ServeHTTP(w, r)
			return
		}
		lastReason = reason
	}
	attrs := requestAttributes(u, r, h.nodeName)
	first := attrs[0]
	msg := fmt.Sprintf("Forbidden (user=%s, verb=%s, resource=%s, subresource=%s)", u.GetName(), first.GetVerb(), first.GetResource(), subresources(attrs))
	if lastReason != "" {
		msg += ": " + lastReason
	}
	writeStatus(w, http.StatusForbidden, metav1.StatusReasonForbidden, msg)
}

func subresources(attrs []authorizer.AttributesRecord) string {
	var s []string
	for _, a := range attrs {
		s = append(s, a.Subresource)
	}
	return strings.Join(s, "|")
}

// requestAttributes are the authorization checks of a request, tried in
// order until one allows it.
func requestAttributes(u user.Info, r *http.Request, nodeName string) []authorizer.AttributesRecord {
	verb := "get"
	switch r.Method {
	case http.MethodPost:
		verb = "create"
	case http.MethodPut:
		verb = "update"
	case http.MethodPatch:
		verb = "patch"
	case http.MethodDelete:
		verb = "delete"
	}
	rec := func(sub string) authorizer.AttributesRecord {
		return authorizer.AttributesRecord{
			User: u, Verb: verb, APIGroup: "", APIVersion: "v1", Resource: "nodes", Name: nodeName,
			ResourceRequest: true, Path: r.URL.Path, Subresource: sub,
		}
	}
	p := r.URL.Path
	switch {
	case isSubpath(p, "/stats"):
		return []authorizer.AttributesRecord{rec("stats")}
	case isSubpath(p, "/metrics"):
		return []authorizer.AttributesRecord{rec("metrics")}
	case isSubpath(p, "/logs"):
		return []authorizer.AttributesRecord{rec("log")}
	case isSubpath(p, "/healthz"):
		return []authorizer.AttributesRecord{rec("healthz"), rec("proxy")}
	case isSubpath(p, "/pods"):
		return []authorizer.AttributesRecord{rec("pods"), rec("proxy")}
	}
	return []authorizer.AttributesRecord{rec("proxy")}
}

func isSubpath(p, prefix string) bool {
	return p == prefix || (strings.HasPrefix(p, prefix) && p[len(prefix)] == '/')
}
