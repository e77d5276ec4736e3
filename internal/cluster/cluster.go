package cluster

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/wasilet/wasilet/deploy"
	"github.com/wasilet/wasilet/internal/atomicfile"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Component names, in start order. They name the log and pid files.
const (
	EtcdComponent              = "etcd"
	RegistryComponent          = "registry"
	APIServerComponent         = "kube-apiserver"
	ControllerManagerComponent = "kube-controller-manager"
	SchedulerComponent         = "kube-scheduler"
)

// Components lists the processes of a cluster in start order.
var Components = []string{EtcdComponent, RegistryComponent, APIServerComponent, ControllerManagerComponent, SchedulerComponent}

// Tools are the binaries (in the tools directory) a cluster runs.
var Tools = []string{"etcd", "registry", "kube-apiserver", "kube-controller-manager", "kube-scheduler"}

// Ports are the 127.0.0.1 ports of a cluster's components. A zero field means
// the default of DefaultPorts.
type Ports struct {
	APIServer         int `json:"apiserver"`
	Etcd              int `json:"etcd"`
	EtcdPeer          int `json:"etcdPeer"`
	ControllerManager int `json:"controllerManager"`
	Scheduler         int `json:"scheduler"`
	Registry          int `json:"registry"`
}

// DefaultPorts are the usual ports of each component.
func DefaultPorts() Ports {
	return Ports{APIServer: 6443, Etcd: 2379, EtcdPeer: 2380, ControllerManager: 10257, Scheduler: 10259, Registry: 5000}
}

// FreeClusterPorts picks a free port for every component (for tests).
func FreeClusterPorts() (Ports, error) {
	p, err := FreePorts(6)
	if err != nil {
		return Ports{}, err
	}
	return Ports{APIServer: p[0], Etcd: p[1], EtcdPeer: p[2], ControllerManager: p[3], Scheduler: p[4], Registry: p[5]}, nil
}

func (p Ports) withDefaults() Ports {
	d := DefaultPorts()
	set := func(v *int, def int) {
		if *v == 0 {
			*v = def
		}
	}
	set(&p.APIServer, d.APIServer)
	set(&p.Etcd, d.Etcd)
	set(&p.EtcdPeer, d.EtcdPeer)
	set(&p.ControllerManager, d.ControllerManager)
	set(&p.Scheduler, d.Scheduler)
	set(&p.Registry, d.Registry)
	return p
}

// byComponent lists each port with the component that listens on it.
func (p Ports) byComponent() []struct {
	port int
	who  string
} {
	return []struct {
		port int
		who  string
	}{
		{p.Etcd, EtcdComponent + " (client)"}, {p.EtcdPeer, EtcdComponent + " (peer)"}, {p.Registry, RegistryComponent},
		{p.APIServer, APIServerComponent}, {p.ControllerManager, ControllerManagerComponent}, {p.Scheduler, SchedulerComponent},
	}
}

func (p Ports) validate() error {
	seen := map[int]string{}
	for _, pc := range p.byComponent() {
		if pc.port <= 0 || pc.port > 65535 {
			return fmt.Errorf("port %d for %s is out of range", pc.port, pc.who)
		}
		if other, ok := seen[pc.port]; ok {
			return fmt.Errorf("port %d is given to both %s and %s", pc.port, other, pc.who)
		}
		seen[pc.port] = pc.who
	}
	return nil
}

// Options configure Up.
type Options struct {
	// StateDir holds everything the cluster owns (see the package doc).
	// Required.
	StateDir string
	// ToolsDir holds the binaries (hack/tools.sh --dir); empty means
	// $WASILET_TOOLS_DIR.
	ToolsDir string
	// Ports of the components; zero fields take DefaultPorts.
	Ports Ports
	// DieWithParent kills the components when the calling process dies
	// (tests). By default they keep running after Up returns, until Down.
	DieWithParent bool
	// ReadyTimeout bounds the wait for each component (default 120 s: the
	// machine may be busy).
	ReadyTimeout time.Duration
	// Log receives progress lines; nil discards them.
	Log io.Writer
}

// Cluster describes a running local cluster.
type Cluster struct {
	StateDir string `json:"-"`
	ToolsDir string `json:"toolsDir"`
	Ports    Ports  `json:"ports"`
	// APIServerURL is https://127.0.0.1:<port>.
	APIServerURL string `json:"-"`
	// AdminKubeconfig authenticates as kubernetes-admin (system:masters).
	AdminKubeconfig string `json:"-"`
	// BootstrapKubeconfig authenticates with the bootstrap token, for a
	// node's TLS bootstrap.
	BootstrapKubeconfig string `json:"-"`
	// RegistryAddr is the registry's 127.0.0.1:<port> (plain HTTP, no auth).
	RegistryAddr string `json:"-"`
	// Reused says Up found this cluster running and started nothing.
	Reused bool `json:"-"`
	// SigningDuration, when set, is the lifetime of the certificates the
	// controller-manager signs (--cluster-signing-duration): short-lived
	// node certificates for rotation tests. See SetSigningDuration.
	SigningDuration time.Duration `json:"signingDuration,omitempty"`
}

// SetSigningDuration records the lifetime of the certificates the
// controller-manager of the cluster in stateDir signs (0: its default of a
// year). It takes effect when the controller-manager next starts (see
// StartComponent).
func SetSigningDuration(stateDir string, d time.Duration) error {
	c, err := Load(stateDir)
	if err != nil {
		return err
	}
	c.SigningDuration = d
	return c.save()
}

const stateFile = "state.json"

func (c *Cluster) fill(stateDir string) {
	c.StateDir = stateDir
	c.APIServerURL = "https://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(c.Ports.APIServer))
	c.AdminKubeconfig = filepath.Join(stateDir, "admin.kubeconfig")
	c.BootstrapKubeconfig = filepath.Join(stateDir, "bootstrap.kubeconfig")
	c.RegistryAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(c.Ports.Registry))
}

// PKIDir is the directory of the cluster's certificates and keys.
func (c *Cluster) PKIDir() string { return filepath.Join(c.StateDir, "pki") }

// LogDir holds the components' logs.
func (c *Cluster) LogDir() string { return filepath.Join(c.StateDir, "logs") }

// LogPath is the log file of a component (one of Components).
func (c *Cluster) LogPath(component string) string {
	return filepath.Join(c.LogDir(), component+".log")
}

// RESTConfig is the admin client configuration.
func (c *Cluster) RESTConfig() (*rest.Config, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", c.AdminKubeconfig)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", c.AdminKubeconfig, err)
	}
	return cfg, nil
}

// Client is an admin clientset.
func (c *Cluster) Client() (kubernetes.Interface, error) {
	cfg, err := c.RESTConfig()
	if err != nil {
		return nil, err
	}
	return kubernetes.NewForConfig(cfg)
}

// Load reads the description of the cluster kept in stateDir (whether or not
// it runs).
func Load(stateDir string) (*Cluster, error) {
	abs, err := filepath.Abs(stateDir)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(abs, stateFile))
	if err != nil {
		return nil, fmt.Errorf("no cluster in %s: %w", abs, err)
	}
	var c Cluster
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("read %s: %w", filepath.Join(abs, stateFile), err)
	}
	c.fill(abs)
	return &c, nil
}

func (c *Cluster) save() error {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(c.StateDir, stateFile), append(b, '\n'), 0o644)
}

// ComponentStatus is the state of one component process.
type ComponentStatus struct {
	Name    string
	PID     int // 0 when not running
	Running bool
	Log     string
}

// Status reports each component's process and whether the apiserver is ready.
func Status(ctx context.Context, stateDir string) (c *Cluster, comps []ComponentStatus, ready bool, err error) {
	c, err = Load(stateDir)
	if err != nil {
		return nil, nil, false, err
	}
	for _, name := range Components {
		s := ComponentStatus{Name: name, Log: c.LogPath(name)}
		if pid, st, err := readPIDFile(c.pidPath(name)); err == nil && alive(pid, st) {
			s.PID, s.Running = pid, true
		}
		comps = append(comps, s)
	}
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	ready = c.apiserverReady(rctx) == nil
	return c, comps, ready, nil
}

func (c *Cluster) pidPath(component string) string {
	return filepath.Join(c.StateDir, "run", component+".pid")
}

// running reports whether every component's recorded process runs.
func (c *Cluster) running() bool {
	for _, name := range Components {
		pid, st, err := readPIDFile(c.pidPath(name))
		if err != nil || !alive(pid, st) {
			return false
		}
	}
	return true
}

// Up starts a cluster in o.StateDir and waits until it serves: etcd, the
// registry, kube-apiserver (then the bootstrap token and RBAC bindings),
// kube-controller-manager and kube-scheduler, and finally the default service
// account (proof that the controllers work). If that state directory's cluster
// already runs and is ready, Up returns it (Reused) without starting anything;
// a partly running one is stopped and started again. The PKI, the bootstrap
// token and etcd's data are kept across restarts.
func Up(ctx context.Context, o Options) (_ *Cluster, retErr error) {
	if o.StateDir == "" {
		return nil, errors.New("cluster up: a state directory is required")
	}
	stateDir, err := filepath.Abs(o.StateDir)
	if err != nil {
		return nil, err
	}
	logw := o.Log
	if logw == nil {
		logw = io.Discard
	}
	timeout := o.ReadyTimeout
	if timeout == 0 {
		timeout = 120 * time.Second
	}

	// Reuse a running cluster.
	if prev, err := Load(stateDir); err == nil && prev.running() {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := prev.apiserverReady(rctx)
		cancel()
		if err == nil {
			prev.Reused = true
			fmt.Fprintf(logw, ">> cluster in %s is running already; reusing it\n", stateDir)
			return prev, nil
		}
		fmt.Fprintf(logw, ">> cluster in %s runs but is not ready (%v); restarting it\n", stateDir, err)
	}
	// Stop leftovers of an earlier cluster in this state directory.
	if err := Down(ctx, stateDir); err != nil {
		return nil, fmt.Errorf("cluster up: stop leftovers: %w", err)
	}

	tools, err := toolsDir(o.ToolsDir)
	if err != nil {
		return nil, fmt.Errorf("cluster up: %w", err)
	}
	for _, t := range Tools {
		if _, err := os.Stat(filepath.Join(tools, t)); err != nil {
			return nil, fmt.Errorf("cluster up: %s missing in tools directory %s (run `./just tools`)", t, tools)
		}
	}
	ports := o.Ports.withDefaults()
	if err := ports.validate(); err != nil {
		return nil, fmt.Errorf("cluster up: %w", err)
	}
	for _, pc := range ports.byComponent() {
		if err := checkPortFree(pc.port, pc.who); err != nil {
			return nil, fmt.Errorf("cluster up: %w", err)
		}
	}

	c := &Cluster{ToolsDir: tools, Ports: ports}
	c.fill(stateDir)
	start := time.Now()
	if err := c.writeConfig(); err != nil {
		return nil, fmt.Errorf("cluster up: %w", err)
	}
	if err := c.save(); err != nil {
		return nil, fmt.Errorf("cluster up: %w", err)
	}
	tlsCfg, err := c.adminTLS()
	if err != nil {
		return nil, fmt.Errorf("cluster up: %w", err)
	}

	so := startOptions{logDir: filepath.Join(stateDir, "logs"), runDir: filepath.Join(stateDir, "run"), dieWithParent: o.DieWithParent}
	var started []*proc
	defer func() {
		if retErr != nil {
			for i := len(started) - 1; i >= 0; i-- {
				_ = started[i].kill()
				_ = os.Remove(started[i].pidPath)
			}
		}
	}()
	launch := func(comp *component) (*proc, error) {
		p, err := comp.start(so)
		if err != nil {
			return nil, fmt.Errorf("cluster up: %w", err)
		}
		started = append(started, p)
		return p, nil
	}
	wait := func(ps ...*proc) error {
		for _, p := range ps {
			wctx, cancel := context.WithTimeout(ctx, timeout)
			err := p.waitReady(wctx)
			cancel()
			if err != nil {
				return fmt.Errorf("cluster up: %w", err)
			}
			fmt.Fprintf(logw, ">> %s ready (%.1fs)\n", p.c.name, time.Since(start).Seconds())
		}
		return nil
	}

	etcd, err := launch(c.etcdComponent())
	if err != nil {
		return nil, err
	}
	regComp, err := registryComponent(tools, filepath.Join(stateDir, "registry"), c.RegistryAddr, "")
	if err != nil {
		return nil, fmt.Errorf("cluster up: %w", err)
	}
	reg, err := launch(regComp)
	if err != nil {
		return nil, err
	}
	if err := wait(etcd); err != nil {
		return nil, err
	}
	api, err := launch(c.apiserverComponent(tlsCfg))
	if err != nil {
		return nil, err
	}
	if err := wait(api); err != nil {
		return nil, err
	}
	cs, err := c.Client()
	if err != nil {
		return nil, fmt.Errorf("cluster up: %w", err)
	}
	token, err := loadOrCreateBootstrapToken(filepath.Join(c.PKIDir(), "bootstrap-token"))
	if err != nil {
		return nil, fmt.Errorf("cluster up: bootstrap token: %w", err)
	}
	caPEM, err := os.ReadFile(filepath.Join(c.PKIDir(), CACert))
	if err != nil {
		return nil, fmt.Errorf("cluster up: %w", err)
	}
	actx, cancel := context.WithTimeout(ctx, timeout)
	err = applyBootstrapObjects(actx, cs, token, c.APIServerURL, caPEM)
	if err == nil {
		// Akri's CRDs and the agent's and controller's RBAC (which lets
		// every node run the agent in-process with its own credentials).
		var rc *rest.Config
		if rc, err = c.RESTConfig(); err == nil {
			if err = deploy.InstallCRDs(actx, rc); err == nil {
				err = deploy.ApplyRBAC(actx, rc)
			}
		}
	}
	cancel()
	if err != nil {
		return nil, fmt.Errorf("cluster up: %w", err)
	}
	kcm, err := launch(c.controllerManagerComponent())
	if err != nil {
		return nil, err
	}
	sched, err := launch(c.schedulerComponent())
	if err != nil {
		return nil, err
	}
	if err := wait(kcm, sched, reg); err != nil {
		return nil, err
	}
	// The default service account appears once the controllers run; pods
	// cannot be created in a namespace before it exists.
	sctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := WaitForServiceAccount(sctx, cs, metav1.NamespaceDefault, "default"); err != nil {
		return nil, fmt.Errorf("cluster up: %w\n%s", err, logTail(c.LogPath(ControllerManagerComponent), 25))
	}
	fmt.Fprintf(logw, ">> cluster up in %.1fs\n", time.Since(start).Seconds())
	return c, nil
}

// StartComponent starts one component of the cluster in stateDir again if
// it is not running (it crashed, or a fault test killed it), from the same
// state and port, and waits until it is ready; the other components are
// left alone (Up would restart them all). dieWithParent is Options'.
func StartComponent(ctx context.Context, stateDir, name string, dieWithParent bool) error {
	c, err := Load(stateDir)
	if err != nil {
		return err
	}
	if pid, st, err := readPIDFile(c.pidPath(name)); err == nil && alive(pid, st) {
		return nil
	}
	var comp *component
	switch name {
	case EtcdComponent:
		comp = c.etcdComponent()
	case RegistryComponent:
		if comp, err = registryComponent(c.ToolsDir, filepath.Join(c.StateDir, "registry"), c.RegistryAddr, ""); err != nil {
			return err
		}
	case APIServerComponent:
		tlsCfg, err := c.adminTLS()
		if err != nil {
			return err
		}
		comp = c.apiserverComponent(tlsCfg)
	case ControllerManagerComponent:
		comp = c.controllerManagerComponent()
	case SchedulerComponent:
		comp = c.schedulerComponent()
	default:
		return fmt.Errorf("cluster: no component %q (want one of %v)", name, Components)
	}
	// A process killed a moment ago may not have released its ports yet.
	for _, port := range comp.ports {
		for deadline := time.Now().Add(10 * time.Second); checkPortFree(port, name) != nil && time.Now().Before(deadline); {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	p, err := comp.start(startOptions{logDir: c.LogDir(), runDir: filepath.Join(c.StateDir, "run"), dieWithParent: dieWithParent})
	if err != nil {
		return fmt.Errorf("start %s: %w", name, err)
	}
	wctx, cancel := context.WithTimeout(ctx, 120*time.Second)
	defer cancel()
	if err := p.waitReady(wctx); err != nil {
		return fmt.Errorf("start %s: %w", name, err)
	}
	return nil
}

// WaitForServiceAccount polls until namespace/name exists.
func WaitForServiceAccount(ctx context.Context, cs kubernetes.Interface, namespace, name string) error {
	for {
		_, err := cs.CoreV1().ServiceAccounts(namespace).Get(ctx, name, metav1.GetOptions{})
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("service account %s/%s did not appear: %w (last error: %v)", namespace, name, ctx.Err(), err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Down stops every component of the cluster in stateDir (SIGTERM, then
// SIGKILL) and waits until they are gone. The state (PKI, kubeconfigs, etcd
// data, registry storage, logs) stays; Up starts from it again. Down on a
// directory without a running cluster does nothing.
func Down(ctx context.Context, stateDir string) error {
	abs, err := filepath.Abs(stateDir)
	if err != nil {
		return err
	}
	var errs []error
	for i := len(Components) - 1; i >= 0; i-- {
		name := Components[i]
		if err := stopByPIDFile(filepath.Join(abs, "run", name+".pid"), name); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("cluster down: %w", err)
	}
	return nil
}

// writeConfig generates the PKI and the kubeconfigs.
func (c *Cluster) writeConfig() error {
	for _, d := range []string{c.StateDir, filepath.Join(c.StateDir, "logs"), filepath.Join(c.StateDir, "run")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	pki := c.PKIDir()
	if err := GeneratePKI(pki); err != nil {
		return err
	}
	kcs := []struct{ file, cert, key, user string }{
		{"admin.kubeconfig", AdminCert, AdminKey, AdminUser},
		{"controller-manager.kubeconfig", ControllerMgrCert, ControllerMgrKey, ControllerManagerUser},
		{"scheduler.kubeconfig", SchedulerCert, SchedulerKey, SchedulerUser},
	}
	for _, k := range kcs {
		if err := writeCertKubeconfig(filepath.Join(c.StateDir, k.file), c.APIServerURL, pki, k.cert, k.key, k.user); err != nil {
			return err
		}
	}
	token, err := loadOrCreateBootstrapToken(filepath.Join(pki, "bootstrap-token"))
	if err != nil {
		return err
	}
	ca, err := os.ReadFile(filepath.Join(pki, CACert))
	if err != nil {
		return err
	}
	return writeKubeconfig(c.BootstrapKubeconfig, c.APIServerURL, ca, kubeconfigUser{name: "kubelet-bootstrap", token: token})
}

// adminTLS is a TLS client configuration authenticating as the admin and
// trusting the cluster CA.
func (c *Cluster) adminTLS() (*tls.Config, error) {
	pki := c.PKIDir()
	cert, err := tls.LoadX509KeyPair(filepath.Join(pki, AdminCert), filepath.Join(pki, AdminKey))
	if err != nil {
		return nil, fmt.Errorf("admin certificate: %w", err)
	}
	caPEM, err := os.ReadFile(filepath.Join(pki, CACert))
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("no certificate in %s", filepath.Join(pki, CACert))
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}

// apiserverReady checks /readyz with the admin credentials.
func (c *Cluster) apiserverReady(ctx context.Context) error {
	t, err := c.adminTLS()
	if err != nil {
		return err
	}
	return httpOK(ctx, &http.Client{Transport: &http.Transport{TLSClientConfig: t}}, c.APIServerURL+"/readyz")
}

// httpOK GETs url and wants 200.
func httpOK(ctx context.Context, client *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", url, resp.Status, strings.TrimSpace(string(body)))
	}
	return nil
}

func (c *Cluster) tool(name string) string { return filepath.Join(c.ToolsDir, name) }

func (c *Cluster) etcdComponent() *component {
	client := "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(c.Ports.Etcd))
	peer := "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(c.Ports.EtcdPeer))
	return &component{
		name: EtcdComponent,
		bin:  c.tool("etcd"),
		args: []string{
			"--name=wasilet",
			"--data-dir=" + filepath.Join(c.StateDir, "etcd"),
			"--listen-client-urls=" + client,
			"--advertise-client-urls=" + client,
			"--listen-peer-urls=" + peer,
			"--initial-advertise-peer-urls=" + peer,
			"--initial-cluster=wasilet=" + peer,
			// A throw-away local cluster: durability is not worth the
			// fsync latency on a shared disk.
			"--unsafe-no-fsync=true",
			"--log-level=warn",
		},
		ports: []int{c.Ports.Etcd, c.Ports.EtcdPeer},
		ready: func(ctx context.Context) error { return httpOK(ctx, http.DefaultClient, client+"/health") },
	}
}

func (c *Cluster) apiserverComponent(t *tls.Config) *component {
	pki := func(f string) string { return filepath.Join(c.PKIDir(), f) }
	return &component{
		name: APIServerComponent,
		bin:  c.tool("kube-apiserver"),
		args: []string{
			"--etcd-servers=http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(c.Ports.Etcd)),
			"--bind-address=127.0.0.1",
			"--advertise-address=127.0.0.1",
			"--secure-port=" + strconv.Itoa(c.Ports.APIServer),
			"--tls-cert-file=" + pki(APIServerCert),
			"--tls-private-key-file=" + pki(APIServerKey),
			"--client-ca-file=" + pki(CACert),
			"--kubelet-client-certificate=" + pki(APIServerKubeletCert),
			"--kubelet-client-key=" + pki(APIServerKubeletKey),
			"--kubelet-preferred-address-types=InternalIP,Hostname,ExternalIP",
			"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
			"--service-account-key-file=" + pki(ServiceAccountPub),
			"--service-account-signing-key-file=" + pki(ServiceAccountKey),
			"--service-cluster-ip-range=" + ServiceClusterIPRange,
			"--authorization-mode=Node,RBAC",
			"--enable-admission-plugins=NodeRestriction",
			"--enable-bootstrap-token-auth=true",
			"--endpoint-reconciler-type=none",
			"--allow-privileged=true",
			"--requestheader-client-ca-file=" + pki(FrontProxyCACert),
			"--requestheader-allowed-names=" + FrontProxyClientUser,
			"--requestheader-extra-headers-prefix=X-Remote-Extra-",
			"--requestheader-group-headers=X-Remote-Group",
			"--requestheader-username-headers=X-Remote-User",
			"--proxy-client-cert-file=" + pki(FrontProxyClientCert),
			"--proxy-client-key-file=" + pki(FrontProxyClientKey),
			"--cert-dir=" + filepath.Join(c.StateDir, "run", "kube-apiserver"),
		},
		ports: []int{c.Ports.APIServer},
		ready: func(ctx context.Context) error {
			return httpOK(ctx, &http.Client{Transport: &http.Transport{TLSClientConfig: t}}, c.APIServerURL+"/readyz")
		},
	}
}

// insecureHealthz checks /healthz of a component serving with a self-signed
// certificate on loopback.
func insecureHealthz(port int) func(ctx context.Context) error {
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // loopback, self-signed
	url := "https://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) + "/healthz"
	return func(ctx context.Context) error { return httpOK(ctx, client, url) }
}

func (c *Cluster) controllerManagerComponent() *component {
	pki := func(f string) string { return filepath.Join(c.PKIDir(), f) }
	kc := filepath.Join(c.StateDir, "controller-manager.kubeconfig")
	return &component{
		name: ControllerManagerComponent,
		bin:  c.tool("kube-controller-manager"),
		args: append([]string{
			"--kubeconfig=" + kc,
			"--authentication-kubeconfig=" + kc,
			"--authorization-kubeconfig=" + kc,
			"--bind-address=127.0.0.1",
			"--secure-port=" + strconv.Itoa(c.Ports.ControllerManager),
			"--cert-dir=" + filepath.Join(c.StateDir, "run", "kube-controller-manager"),
			"--cluster-name=" + ClusterName,
			"--cluster-signing-cert-file=" + pki(CACert),
			"--cluster-signing-key-file=" + pki(CAKey),
			"--root-ca-file=" + pki(CACert),
			"--service-account-private-key-file=" + pki(ServiceAccountKey),
			"--use-service-account-credentials=true",
			"--service-cluster-ip-range=" + ServiceClusterIPRange,
			// Every default controller (csrsigning, csrapproving, csrcleaner,
			// nodelifecycle, serviceaccount, serviceaccount-token,
			// garbagecollector, namespace, replicaset, deployment, job,
			// endpoints, endpointslice, …) plus the two kubeadm turns on.
			"--controllers=*,bootstrapsigner,tokencleaner",
			"--leader-elect=false",
		}, c.signingArgs()...),
		ports: []int{c.Ports.ControllerManager},
		ready: insecureHealthz(c.Ports.ControllerManager),
	}
}

// signingArgs are the controller-manager's flags for SigningDuration.
func (c *Cluster) signingArgs() []string {
	if c.SigningDuration <= 0 {
		return nil
	}
	return []string{"--cluster-signing-duration=" + c.SigningDuration.String()}
}

func (c *Cluster) schedulerComponent() *component {
	kc := filepath.Join(c.StateDir, "scheduler.kubeconfig")
	return &component{
		name: SchedulerComponent,
		bin:  c.tool("kube-scheduler"),
		args: []string{
			"--kubeconfig=" + kc,
			"--authentication-kubeconfig=" + kc,
			"--authorization-kubeconfig=" + kc,
			"--bind-address=127.0.0.1",
			"--secure-port=" + strconv.Itoa(c.Ports.Scheduler),
			"--cert-dir=" + filepath.Join(c.StateDir, "run", "kube-scheduler"),
			"--leader-elect=false",
		},
		ports: []int{c.Ports.Scheduler},
		ready: insecureHealthz(c.Ports.Scheduler),
	}
}
