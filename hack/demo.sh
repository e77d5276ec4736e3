#!/usr/bin/env bash
# The reference scenario (design.md §5, from the akri-on-krustlet demo), end to
# end, on the local cluster of state directory STATE: a discovery handler
# written in Wasm finds device foo0, the agent (in the wasilet node) creates
# Instance akri-debug-echo-8120fe, the controller runs a Wasm broker on the
# node, and the broker logs `Pod is running and using debugEcho device named:
# "foo0"`. Then a second act: the same Configuration, named
# akri-debug-echo-component, served by the debugEcho discovery handler built as
# a Wasm component (handlers/debug-echo-component) that the agent hosts
# in-process, registered on the node as debugEchoComponent (no proxy, no
# handler pod); both acts print the time from Configuration applied to the
# broker's log line.
#
# Usage: hack/demo.sh STATE          (`./just demo` builds everything and calls it)
#        hack/demo.sh STATE --down   (`./just demo-down`: stop everything it started)
#
# The scenario is a list of steps, each a shell function below; a failure
# stops the script with a message naming the step. A second run reuses the
# running cluster, node, controller, proxy and handler pod, applies both
# Configurations again and ends the same way.
set -euo pipefail
state=$(realpath -m "${1:?usage: hack/demo.sh STATE_DIR [--down]}")
cd "$(dirname "${BASH_SOURCE[0]}")/.."

wasilet=${WASILET_BIN:-$PWD/bin/wasilet}
node_name=${WASILET_DEMO_NODE:-wasilet-demo}
node_dir="$state/nodes/$node_name"
akri_dir="$state/akri"                        # agent-registration.sock and the proxy's socket
wde_dir=${WASILET_DEMO_WDE_DIR:-/tmp/wde-dir} # shared with the Wasm handler pod (hostPath)
component_handler=debugEchoComponent          # the debugEcho component's name on the node
ns=${WASILET_DEMO_NAMESPACE:-default}

current=""
step() { current="$*"; printf '\n== %s\n' "$*" >&2; }
fail() { printf '\ndemo FAILED at step "%s": %s\n' "$current" "$*" >&2; trap - EXIT; exit 1; }
trap 'rc=$?; [ $rc -eq 0 ] || printf "\ndemo FAILED at step \"%s\" (exit %s)\n" "$current" "$rc" >&2' EXIT

# alive NAME: the background process recorded in $state/NAME/pid runs.
alive() { [ -f "$state/$1/pid" ] && kill -0 "$(cat "$state/$1/pid")" 2>/dev/null; }
# background NAME CMD...: start CMD detached unless it runs already (log in $state/NAME/log).
background() {
  local name=$1
  shift
  mkdir -p "$state/$name"
  if alive "$name"; then
    echo "   reusing running $name (pid $(cat "$state/$name/pid"))" >&2
    return
  fi
  setsid "$@" >"$state/$name/log" 2>&1 </dev/null &
  echo $! >"$state/$name/pid"
  sleep 0.5
  alive "$name" || { tail -20 "$state/$name/log" >&2; fail "$name exited at once"; }
  echo "   $name started (pid $(cat "$state/$name/pid"), log $state/$name/log)" >&2
}

if [ "${2:-}" = --down ]; then
  trap - EXIT
  for p in "$state"/controller/pid "$state"/proxy/pid "$state"/nodes/*/pid; do
    if [ -f "$p" ]; then
      kill "$(cat "$p")" 2>/dev/null || true
      rm -f "$p"
    fi
  done
  if [ -f "$state/state.json" ]; then
    "$wasilet" cluster down --state "$state"
  fi
  echo "demo stopped (state kept in $state; remove it for a fresh start)" >&2
  exit 0
fi

tools=${WASILET_TOOLS_DIR:-$(hack/tools.sh --dir)}
export PATH="$tools:$PATH" # kubectl, oras, crictl of the pinned versions

# 1. The local control plane and registry (`cluster up` also installs Akri's
#    CRDs and the agent's and controller's RBAC).
step_cluster() {
  step "local cluster (etcd, kube-apiserver, controller-manager, scheduler, registry)"
  local out
  # shellcheck disable=SC2086 # WASILET_DEMO_CLUSTER_ARGS: extra flags, e.g. ports
  out=$("$wasilet" cluster up --state "$state" --tools-dir "$tools" ${WASILET_DEMO_CLUSTER_ARGS:-}) || fail "cluster up"
  eval "$out" # export KUBECONFIG=…
  kubectl get --raw /readyz >/dev/null || fail "apiserver not ready"
  registry=$("$wasilet" cluster status --state "$state" | sed -n 's/^registry: //p')
  echo "   apiserver ready; $out; registry $registry" >&2
}

# 2. A wasilet node joins through TLS bootstrap (kubernetes.io/arch=wasm32-wasi),
#    with the Akri agent in-process, and runs a Wasm pod from the local registry.
step_node() {
  step "wasilet node $node_name joins the cluster (Akri agent in-process)"
  mkdir -p "$node_dir" "$akri_dir" "$wde_dir"
  # The debugEcho component, which the node's agent pulls and hosts as the
  # discovery handler debugEchoComponent (the second act); it sees the Wasm
  # handler pod's exchange directory as /tmp, so both read the same
  # availability file.
  component_ref="$registry/debug-echo-component:latest"
  "$wasilet" push -q bin/wasm/debug-echo-component.component.wasm "$component_ref" >/dev/null || fail "push $component_ref"
  if alive "nodes/$node_name" && ! tr '\0' ' ' <"/proc/$(cat "$node_dir/pid")/cmdline" | grep -q -- "--component-handler $component_handler="; then
    echo "   restarting node $node_name: started without the component handler (an earlier demo)" >&2
    kill "$(cat "$node_dir/pid")"
    for _ in $(seq 100); do alive "nodes/$node_name" || break; sleep 0.1; done
  fi
  if alive "nodes/$node_name"; then
    echo "   reusing running node $node_name (pid $(cat "$node_dir/pid"))" >&2
  else
    # A free port for the kubelet API: the node binds 127.0.0.1.
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    setsid "$wasilet" node --cluster-state "$state" --data-dir "$node_dir/data" \
      --node-name "$node_name" --port "$port" --discovery-handlers-directory "$akri_dir" \
      --component-handler "$component_handler=$component_ref,shared,dir=$wde_dir:/tmp:ro" \
      >"$node_dir/node.log" 2>&1 </dev/null &
    echo $! >"$node_dir/pid"
    echo "   node $node_name started (pid $!, log $node_dir/node.log)" >&2
  fi
  # The admin's step of TLS bootstrap: approve the node's serving certificate.
  for _ in $(seq 120); do
    kubectl get csr "$node_name-tls" >/dev/null 2>&1 && break
    alive "nodes/$node_name" || { tail -20 "$node_dir/node.log" >&2; fail "the node exited"; }
    sleep 1
  done
  kubectl certificate approve "$node_name-tls" >/dev/null || fail "no serving CSR $node_name-tls"
  kubectl wait --for=condition=Ready "node/$node_name" --timeout=120s >/dev/null || fail "node $node_name not Ready"
  kubectl get node "$node_name" -o wide >&2

  step "a Wasm pod on the node"
  local ref="$registry/wasilet/testprog:demo"
  "$wasilet" push -q bin/wasm/testprog.wasm "$ref" >/dev/null || fail "push $ref"
  kubectl delete pod wasm-hello --ignore-not-found --wait=true >/dev/null
  # Pinned to this node: a node of the same local cluster that was started
  # by `just node` and stopped still looks Ready for a while.
  kubectl apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Pod
metadata: {name: wasm-hello}
spec:
  restartPolicy: Never
  nodeSelector: {kubernetes.io/arch: wasm32-wasi, kubernetes.io/hostname: $node_name}
  tolerations:
  - {key: kubernetes.io/arch, operator: Equal, value: wasm32-wasi, effect: NoSchedule}
  - {key: kubernetes.io/arch, operator: Equal, value: wasm32-wasi, effect: NoExecute}
  containers:
  - {name: hello, image: "$ref", args: [hello]}
YAML
  kubectl wait --for=jsonpath='{.status.phase}'=Succeeded pod/wasm-hello --timeout=120s >/dev/null || fail "pod wasm-hello did not succeed"
  echo "   kubectl logs wasm-hello:" >&2
  kubectl logs wasm-hello | sed 's/^/     /' >&2
}

# 3. Akri: the controller (the agent runs in the node).
step_akri() {
  step "Akri CRDs and wasilet controller (the agent runs in the node)"
  kubectl get crd configurations.akri.sh instances.akri.sh >/dev/null || fail "Akri CRDs missing"
  background controller "$wasilet" controller --kubeconfig "$KUBECONFIG"
}

# 4. The Wasm debugEcho discovery handler behind wasilet proxy.
step_discovery() {
  step "debugEcho discovery handler: Wasm pod wasi-debug-echo behind wasilet proxy"
  mkdir -p "$wde_dir"
  DEBUG_ECHO_INSTANCES_SHARED=true AGENT_NODE_NAME="$node_name" \
    background proxy "$wasilet" proxy --discovery-handlers-directory "$akri_dir" --exchange-dir "$wde_dir"
  "$wasilet" push -q bin/wasm/debug-echo.wasm "$registry/debug-echo-handler:latest" >/dev/null || fail "push the handler"
  "$wasilet" push -q bin/wasm/debug-echo-broker.wasm "$registry/debug-echo-broker:latest" >/dev/null || fail "push the broker"
  echo "   pushed $registry/debug-echo-handler:latest and $registry/debug-echo-broker:latest" >&2
  if [ "$(kubectl get pod -n "$ns" wasi-debug-echo -o jsonpath='{.spec.nodeName}' 2>/dev/null)" != "$node_name" ]; then
    kubectl delete pod -n "$ns" wasi-debug-echo --ignore-not-found --wait=true >/dev/null
    # deploy/examples/wasi-debug-echo.yaml, with this cluster's registry and
    # pinned to this node.
    sed -e "s#127.0.0.1:5000/#$registry/#" -e "s#path: /tmp/wde-dir#path: $wde_dir#" \
      -e "s#^  nodeSelector:#  nodeSelector:\n    kubernetes.io/hostname: $node_name#" \
      deploy/examples/wasi-debug-echo.yaml | kubectl apply -n "$ns" -f - >/dev/null
  fi
  kubectl wait -n "$ns" --for=jsonpath='{.status.phase}'=Running pod/wasi-debug-echo --timeout=120s >/dev/null ||
    { kubectl describe pod -n "$ns" wasi-debug-echo >&2; fail "handler pod wasi-debug-echo not Running"; }
  echo "   handler pod wasi-debug-echo Running on $node_name" >&2

  # Pull and compile the broker's module on the node once, as an image
  # pre-pull would, so that the timed step below measures Akri's reaction and
  # not a first compile (about 3 s for a Go module on two cores).
  kubectl delete pod -n "$ns" broker-warmup --ignore-not-found --wait=true >/dev/null
  kubectl apply -n "$ns" -f - >/dev/null <<YAML
apiVersion: v1
kind: Pod
metadata: {name: broker-warmup}
spec:
  nodeSelector: {kubernetes.io/arch: wasm32-wasi, kubernetes.io/hostname: $node_name}
  tolerations:
  - {key: kubernetes.io/arch, operator: Equal, value: wasm32-wasi, effect: NoSchedule}
  - {key: kubernetes.io/arch, operator: Equal, value: wasm32-wasi, effect: NoExecute}
  containers:
  - {name: broker, image: "$registry/debug-echo-broker:latest"}
YAML
  kubectl wait -n "$ns" --for=jsonpath='{.status.phase}'=Running pod/broker-warmup --timeout=120s >/dev/null || fail "broker image does not run"
  kubectl delete pod -n "$ns" broker-warmup --wait=false >/dev/null
  echo "   broker image pulled and compiled on $node_name" >&2
}

# 5. The debugEcho component: the agent pulls and compiles it on first use.
#    A throw-away Configuration (no broker) brings that about, so that the
#    second act's timing, like the first's (whose handler pod already runs),
#    measures Akri's reaction and not a first compile.
step_component() {
  step "debugEcho as a Wasm component hosted by the agent (handler $component_handler): pulled and compiled"
  kubectl delete akric -n "$ns" component-warmup --ignore-not-found --wait=true >/dev/null
  kubectl apply -n "$ns" -f - >/dev/null <<YAML
apiVersion: akri.sh/v0
kind: Configuration
metadata: {name: component-warmup}
spec:
  discoveryHandler:
    name: $component_handler
    discoveryDetails: |
      descriptions:
      - warmup
  capacity: 1
YAML
  local found=""
  for _ in $(seq 600); do
    found=$(kubectl get akrii -n "$ns" -o jsonpath='{.items[*].spec.configurationName}' 2>/dev/null | tr ' ' '\n' | grep -x component-warmup || true)
    [ -n "$found" ] && break
    sleep 0.2
  done
  [ -n "$found" ] || fail "no Instance from the component handler $component_handler (log: $node_dir/node.log)"
  kubectl delete akric -n "$ns" component-warmup --wait=true >/dev/null
  echo "   $component_ref pulled, compiled and serving on $node_name" >&2
}

# 6. Configuration → Instance → broker pod that uses the device, timed from
#    kubectl apply to the broker's log line: act NAME HANDLER WHAT applies
#    deploy/examples/akri-debug-echo.yaml as Configuration NAME naming
#    discovery handler HANDLER, and sets elapsed.
want='Pod is running and using debugEcho device named: "foo0"'
act() {
  local name=$1 handler=$2 what=$3
  local instance="$name-8120fe" # shared device foo0: the hash depends on the device only
  local broker="$node_name-$instance-pod"
  step "Configuration $name ($what): Instance $instance and broker $broker"
  if kubectl get akric -n "$ns" "$name" >/dev/null 2>&1; then
    echo "   deleting the Configuration of an earlier run, to time a fresh one" >&2
    kubectl delete akric -n "$ns" "$name" --wait=true --timeout=60s >/dev/null || fail "delete the earlier Configuration"
    kubectl wait -n "$ns" --for=delete "pod/$broker" --timeout=60s >/dev/null 2>&1 || true
  fi
  local t0 t1 line=""
  t0=$(date +%s.%N)
  sed -e "s#127.0.0.1:5000/#$registry/#" -e "s#^  name: akri-debug-echo\$#  name: $name#" -e "s#^    name: debugEcho\$#    name: $handler#" \
    deploy/examples/akri-debug-echo.yaml | kubectl apply -n "$ns" -f - >/dev/null
  for _ in $(seq 1200); do
    line=$(kubectl logs -n "$ns" "$broker" 2>/dev/null | head -1 || true)
    [ "$line" = "$want" ] && break
    sleep 0.05
  done
  t1=$(date +%s.%N)
  if [ "$line" != "$want" ]; then
    kubectl get akric,akrii,pods -n "$ns" -o wide >&2 || true
    fail "broker $broker did not log the device line (got: ${line:-nothing}); logs: $node_dir/node.log, $state/controller/log, $state/proxy/log"
  fi
  elapsed=$(python3 -c "print(f'{$t1-$t0:.2f}')")
  echo
  kubectl get "akric/$name" "akrii/$instance" "pod/$broker" -n "$ns" -o wide
  echo
  echo "broker $broker:"
  kubectl get pod -n "$ns" "$broker" -o jsonpath='{range .spec.containers[*]}  limits:   {.resources.limits}{"\n"}  requests: {.resources.requests}{"\n"}{end}'
  echo "  kubectl logs: $line"
  echo
  echo "Configuration applied → broker log line: ${elapsed}s ($what)"
}

step_cluster
step_node
step_akri
step_discovery
step_component
# Act 1: the Wasm handler pod behind wasilet proxy (the original demo's shape).
act akri-debug-echo debugEcho "handler debugEcho: Wasm pod wasi-debug-echo behind wasilet proxy"
pod_time=$elapsed
# Act 2: the same Configuration, served by the debugEcho component in the agent.
act akri-debug-echo-component "$component_handler" "handler $component_handler: Wasm component hosted by the agent"
component_time=$elapsed

trap - EXIT
cat <<EOF

== Configuration applied → broker log line
  akri-debug-echo            Wasm handler pod behind wasilet proxy:  ${pod_time}s
  akri-debug-echo-component  Wasm component hosted by the agent:     ${component_time}s

== explore
  export KUBECONFIG=$KUBECONFIG
  kubectl get akric,akrii -o wide        # the two Configurations and their Instances
  kubectl logs $node_name-akri-debug-echo-8120fe-pod
  kubectl logs $node_name-akri-debug-echo-component-8120fe-pod
  kubectl get pod $node_name-akri-debug-echo-8120fe-pod -o yaml   # akri.sh/akri-debug-echo-8120fe in limits and requests
  echo OFFLINE > $wde_dir/debug-echo-availability.txt   # the device goes (both handlers read this file), and with it Instances and brokers
  echo ONLINE > $wde_dir/debug-echo-availability.txt    # and they come back
  logs: $node_dir/node.log $state/controller/log $state/proxy/log
== stop everything
  ./just demo-down
EOF
