#!/usr/bin/env bash
# The reference scenario (design.md §5, from the akri-on-krustlet demo), end to
# end, on the local cluster of state directory STATE.
#
# Usage: hack/demo.sh STATE     (`./just demo` builds everything and calls it)
#
# The scenario is a list of steps, each a shell function below. A step that is
# not built yet calls `not_built "<what>"`; a later issue replaces that call
# with the real commands. The script exits 0 when every built step succeeded,
# and prints what is still missing.
set -euo pipefail
state=$(realpath -m "${1:?usage: hack/demo.sh STATE_DIR}")
cd "$(dirname "${BASH_SOURCE[0]}")/.."

wasilet=${WASILET_BIN:-$PWD/bin/wasilet}
tools=${WASILET_TOOLS_DIR:-$(hack/tools.sh --dir)}
export PATH="$tools:$PATH" # kubectl, oras, crictl of the pinned versions

missing=()
step() { printf '\n== %s\n' "$*" >&2; }
not_built() { missing+=("$*"); printf '   (not built yet: %s)\n' "$*" >&2; }

# 1. The local control plane and registry.
step_cluster() {
  step "local cluster (etcd, kube-apiserver, controller-manager, scheduler, registry)"
  local out
  out=$("$wasilet" cluster up --state "$state" --tools-dir "$tools")
  eval "$out" # export KUBECONFIG=…
  kubectl get --raw /readyz >/dev/null
  echo "   apiserver ready; $out" >&2
}

# 2. A wasilet node joins through TLS bootstrap (kubernetes.io/arch=wasm32-wasi)
#    and runs a Wasm pod pulled from the local registry.
node_name=${WASILET_DEMO_NODE:-wasilet-demo}
node_dir="$state/nodes/$node_name"
step_node() {
  step "wasilet node joins the cluster"
  mkdir -p "$node_dir"
  if [ -f "$node_dir/pid" ] && kill -0 "$(cat "$node_dir/pid")" 2>/dev/null; then
    echo "   reusing running node $node_name (pid $(cat "$node_dir/pid"))" >&2
  else
    # A free port for the kubelet API: the node binds 127.0.0.1.
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    setsid "$wasilet" node --cluster-state "$state" --data-dir "$node_dir/data" \
      --node-name "$node_name" --port "$port" >"$node_dir/node.log" 2>&1 </dev/null &
    echo $! >"$node_dir/pid"
    echo "   node $node_name started (pid $!, log $node_dir/node.log)" >&2
  fi
  # The admin's step of TLS bootstrap: approve the node's serving certificate.
  for _ in $(seq 120); do
    kubectl get csr "$node_name-tls" >/dev/null 2>&1 && break
    kill -0 "$(cat "$node_dir/pid")" 2>/dev/null || { tail -20 "$node_dir/node.log" >&2; exit 1; }
    sleep 1
  done
  kubectl certificate approve "$node_name-tls" >/dev/null
  kubectl wait --for=condition=Ready "node/$node_name" --timeout=120s >/dev/null
  kubectl get node "$node_name" -o wide >&2

  step "a Wasm pod on the node"
  ref="$("$wasilet" cluster status --state "$state" | sed -n 's/^registry: //p')/wasilet/testprog:demo"
  "$wasilet" push -q bin/wasm/testprog.wasm "$ref" >/dev/null
  kubectl delete pod wasm-hello --ignore-not-found --wait=true >/dev/null
  kubectl apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Pod
metadata: {name: wasm-hello}
spec:
  restartPolicy: Never
  nodeSelector: {kubernetes.io/arch: wasm32-wasi}
  tolerations:
  - {key: kubernetes.io/arch, operator: Equal, value: wasm32-wasi, effect: NoSchedule}
  - {key: kubernetes.io/arch, operator: Equal, value: wasm32-wasi, effect: NoExecute}
  containers:
  - {name: hello, image: "$ref", args: [hello]}
YAML
  kubectl wait --for=jsonpath='{.status.phase}'=Succeeded pod/wasm-hello --timeout=120s >/dev/null
  echo "   kubectl logs wasm-hello:" >&2
  kubectl logs wasm-hello | sed 's/^/     /' >&2
}

# 3. Akri: CRDs, controller and agent.
step_akri() {
  step "Akri CRDs, wasilet controller and wasilet agent"
  not_built "Akri CRDs (Configuration, Instance) in deploy/"
  not_built "wasilet controller (Configurations → broker pods and services)"
  not_built "wasilet agent (discovery handler registry, Instances, device plugins)"
}

# 4. The Wasm debugEcho discovery handler behind wasilet proxy.
step_discovery() {
  step "debugEcho discovery handler (Wasm) behind wasilet proxy"
  not_built "wasilet proxy registering debugEcho, exchanging in.in/out.out with the Wasm DH"
  not_built "Wasm discovery handler pod wasi-debug-echo (image pushed to the local registry)"
}

# 5. Configuration akri-debug-echo → Instance → broker pod that uses the device.
step_broker() {
  step "Configuration akri-debug-echo: Instance and broker pod"
  not_built "kubectl get akrii shows the Instance of foo0"
  not_built "broker pod Running with akri.sh/akri-debug-echo-8120fe: 1"
  not_built "kubectl logs of the broker prints: Pod is running and using debugEcho device named: \"foo0\""
}

step_cluster
step_node
step_akri
step_discovery
step_broker

printf '\n== summary\n' >&2
echo "export KUBECONFIG=$KUBECONFIG"
if [ ${#missing[@]} -gt 0 ]; then
  echo "The cluster is up. Not built yet (${#missing[@]} parts of the reference scenario):" >&2
  for m in "${missing[@]}"; do echo "  - $m" >&2; done
fi
echo "Stop the node with: kill \$(cat $node_dir/pid); the cluster with: ./just cluster-down" >&2
