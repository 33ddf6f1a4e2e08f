# shellcheck shell=bash
# The node of `scripts/kube-real start DIR --with-node`: containerd (own root, state and socket
# under DIR), a CNI bridge for pods, kube-scheduler and one kubelet registered as node `localhost`.
# Sourced by scripts/kube-real; uses its spawn, free_port, fail_start, log and $BIN.
#
# One node per machine at a time, deliberately: kubelet v1.20 keeps pod logs in the fixed
# /var/log/pods and its container GC removes log directories (and QoS cgroups under /kubepods) of
# pods it does not know (read in the kubelet's GC code, not observed here), so two kubelets on one
# machine would remove each other's; the pod bridge and subnet are fixed too. `start --with-node` therefore
# takes an exclusive flock on $NODE_LOCK that every daemon of the cluster inherits; it is released
# only when the last of them (shims included) has exited, and a second `start --with-node` waits for
# it (KUBE_REAL_NODE_WAIT seconds, default 900) and then names the processes holding it.

NODE_LOCK="${KUBE_REAL_NODE_LOCK:-/run/lock/testnet-kube-node.lock}"
# The pods' network: a /24 whose .1 is the bridge (and the host's address pods reach).
POD_SUBNET="${KUBE_REAL_POD_SUBNET:-10.213.0.0/24}"
POD_BRIDGE="${KUBE_REAL_POD_BRIDGE:-tnpod0}"
PAUSE_IMAGE="localhost/testnet/pause:$KUBE_VERSION"
NODE_NAME=localhost

# Who holds the node lock (pid and command line), for the message when it is not free.
node_lock_holders() {
    local fd pid
    for fd in /proc/[0-9]*/fd/*; do
        [ "$(readlink "$fd" 2>/dev/null)" = "$NODE_LOCK" ] || continue
        pid=${fd#/proc/}
        pid=${pid%%/*}
        printf '  pid %s: %s\n' "$pid" "$({ tr '\0' ' ' <"/proc/$pid/cmdline"; } 2>/dev/null | cut -c1-160)"
    done | sort -u
}

# Takes the node lock on fd 9 of this shell, so daemons spawned afterwards inherit it.
node_lock() {
    local wait="${KUBE_REAL_NODE_WAIT:-900}"
    mkdir -p "$(dirname "$NODE_LOCK")"
    exec 9>>"$NODE_LOCK"
    if ! flock -n 9; then
        log "another node cluster holds $NODE_LOCK; waiting up to $wait s for it to stop"
        flock -w "$wait" 9 || {
            echo "kube-real: the node lock $NODE_LOCK is still held after $wait s by:" >&2
            node_lock_holders >&2
            exit 1
        }
    fi
}

node_prereqs() {
    local dir="$1"
    [ "$(id -u)" = 0 ] || die "--with-node needs root (kubelet, containerd and the pod network do)"
    # containerd and the kubelet listen on unix sockets under DIR; a sockaddr_un holds 108 bytes
    # and containerd refuses more than 104.
    local longest="$dir/kubelet/pod-resources/kubelet.sock"
    [ "${#longest}" -le 100 ] ||
        die "DIR $dir is too long for the node's unix sockets ($longest is ${#longest} bytes, at most 100): use a shorter DIR"
    local c
    for c in containerd containerd-shim-runc-v2 ctr runc ip flock; do
        command -v "$c" >/dev/null || die "$c missing: run scripts/kube-real build"
    done
    [ -x /usr/lib/cni/bridge ] && [ -x /usr/lib/cni/host-local ] && [ -x /usr/lib/cni/loopback ] ||
        die "CNI plugins missing in /usr/lib/cni: run scripts/kube-real build"
    [[ "$POD_SUBNET" =~ ^([0-9]+\.[0-9]+\.[0-9]+)\.0/24$ ]] ||
        die "KUBE_REAL_POD_SUBNET=$POD_SUBNET: want A.B.C.0/24"
}

pod_gateway() {
    [[ "$POD_SUBNET" =~ ^([0-9]+\.[0-9]+\.[0-9]+)\.0/24$ ]]
    echo "${BASH_REMATCH[1]}.1"
}

# The pause image's archive, built once from the static pause binary of `build`.
pause_archive() {
    local out="$CACHE/images/pause.oci.tar"
    if [ ! -s "$out" ] || [ "$out" -ot "$BIN/pause" ]; then
        local root
        root=$(mktemp -d)
        install -m 0755 "$BIN/pause" "$root/pause"
        mkdir -p "$CACHE/images"
        "$SCRIPTS/oci-archive" --name "$PAUSE_IMAGE" --rootfs "$root" --out "$out" \
            --entrypoint '["/pause"]' >/dev/null || { rm -rf "$root"; return 1; }
        rm -rf "$root"
    fi
    echo "$out"
}

write_containerd_config() {
    local dir="$1" c="$1/containerd"
    mkdir -p "$c" "$dir/cni/net.d"
    cat >"$c/config.toml" <<EOF
version = 2
root = "$c/root"
state = "$c/state"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.devmapper"]

[grpc]
  address = "$c/containerd.sock"

[plugins."io.containerd.internal.v1.opt"]
  path = "$c/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  # Required here: without CAP_SYS_RESOURCE runc cannot set the pause container's negative
  # oom_score_adj and every sandbox fails ("can't get final child's PID from pipe: EOF").
  restrict_oom_score_adj = true
  enable_selinux = false
  # Pod network namespaces under DIR, so stop finds (and unmounts) every one of them.
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "$c/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$dir/cni/net.d"
EOF
    cat >"$dir/cni/net.d/10-testnet.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "testnet-pods",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$POD_BRIDGE",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": "$POD_SUBNET", "gateway": "$(pod_gateway)"}]],
        "dataDir": "$dir/cni/ipam"
      }
    }
  ]
}
EOF
}

# The bridge exists with the gateway address before any pod, so servers can bind it at once.
make_bridge() {
    local gw
    gw=$(pod_gateway)
    ip link show "$POD_BRIDGE" >/dev/null 2>&1 || ip link add "$POD_BRIDGE" type bridge ||
        return 1
    ip -4 addr show dev "$POD_BRIDGE" | grep -q "inet $gw/24" ||
        ip addr add "$gw/24" dev "$POD_BRIDGE" || return 1
    ip link set "$POD_BRIDGE" up
}

ctr_() { ctr --address "$NODE_SOCK" -n k8s.io "$@"; }

api() {
    local method="$1" path="$2"
    shift 2
    curl -sS --cacert "$DIR_/pki/ca.crt" -H "Authorization: Bearer $TOKEN_" -X "$method" "$URL_$path" "$@"
}

# Starts the node on top of a running apiserver. $1 DIR, $2 URL, $3 token.
node_start() {
    local dir="$1"
    DIR_="$1" URL_="$2" TOKEN_="$3"
    NODE_SOCK="$dir/containerd/containerd.sock"
    local t0=$SECONDS i

    write_containerd_config "$dir"
    make_bridge || fail_start "$dir" "could not create the pod bridge $POD_BRIDGE with $(pod_gateway)/24"
    pod_gateway >"$dir/pod-gateway"
    echo "$POD_BRIDGE" >"$dir/pod-bridge"

    spawn "$dir" containerd containerd --config "$dir/containerd/config.toml" --log-level info
    for i in $(seq 1 150); do
        [ -S "$NODE_SOCK" ] && ctr --address "$NODE_SOCK" version >/dev/null 2>&1 && break
        daemon_alive "$dir" containerd || fail_start "$dir" "containerd exited during start"
        sleep 0.2
    done
    [ "$i" -lt 150 ] || fail_start "$dir" "containerd did not answer on $NODE_SOCK after 30 s"

    local pause archive
    pause=$(pause_archive) || fail_start "$dir" "could not build the pause image from $BIN/pause"
    ctr_ images import "$pause" >"$dir/images.log" 2>&1 ||
        fail_start "$dir" "containerd: importing $pause failed: $(tail -n 3 "$dir/images.log")"
    archive="${KUBE_REAL_IMAGE:-${CARGO_TARGET_DIR:-$ROOT/target}/image/testnet-archiver.oci.tar}"
    if [ -s "$archive" ]; then
        ctr_ images import "$archive" >>"$dir/images.log" 2>&1 ||
            fail_start "$dir" "containerd: importing $archive failed: $(tail -n 3 "$dir/images.log")"
    fi

    spawn "$dir" kube-scheduler "$BIN/kube-scheduler" --kubeconfig "$dir/kubeconfig" \
        --leader-elect=false --port 0 --secure-port 0 --logtostderr -v 1

    local kport hport
    kport=$(free_port)
    hport=$(free_port)
    mkdir -p "$dir/kubelet"
    # Anonymous + AlwaysAllow on loopback: the apiserver reaches `localhost:$kport` for logs and
    # exec without client certificates. Image GC off: the images cannot be pulled again.
    # KUBE_REAL_KUBELET_ARGS: extra kubelet flags (e.g. `-v 4` when debugging a pod).
    local extra=()
    read -r -a extra <<<"${KUBE_REAL_KUBELET_ARGS:-}"
    spawn "$dir" kubelet "$BIN/kubelet" --kubeconfig "$dir/kubeconfig" \
        --hostname-override "$NODE_NAME" --address 127.0.0.1 --port "$kport" \
        --healthz-bind-address 127.0.0.1 --healthz-port "$hport" --read-only-port 0 \
        --anonymous-auth=true --authorization-mode AlwaysAllow \
        --container-runtime remote --container-runtime-endpoint "unix://$NODE_SOCK" \
        --image-service-endpoint "unix://$NODE_SOCK" --runtime-request-timeout 2m \
        --cgroup-driver cgroupfs --fail-swap-on=false --root-dir "$dir/kubelet" \
        --cert-dir "$dir/kubelet/pki" --volume-plugin-dir "$dir/kubelet/volume-plugins" \
        --pod-infra-container-image "$PAUSE_IMAGE" \
        --eviction-hard 'nodefs.available<1%,imagefs.available<1%' \
        --image-gc-high-threshold 100 --image-gc-low-threshold 99 \
        --make-iptables-util-chains=false --register-node=true \
        --logtostderr -v 1 "${extra[@]}"

    # Ready: the kubelet registered, the runtime and the CNI network are up.
    local wait="${KUBE_REAL_NODE_READY_WAIT:-180}" ready=""
    for i in $(seq 1 $((wait * 2))); do
        ready=$(api GET "/api/v1/nodes/$NODE_NAME" 2>/dev/null | python3 -c '
import json, sys
try:
    n = json.load(sys.stdin)
except ValueError:
    sys.exit(0)
for c in n.get("status", {}).get("conditions", []):
    if c.get("type") == "Ready":
        print(c.get("status"), c.get("reason", ""), c.get("message", ""))
' 2>/dev/null || true)
        case "$ready" in True*) break ;; esac
        for d in containerd kube-scheduler kubelet; do
            daemon_alive "$dir" "$d" || fail_start "$dir" "$d exited during start"
        done
        sleep 0.5
    done
    case "$ready" in
    True*) ;;
    *) fail_start "$dir" "kubelet: node $NODE_NAME not Ready after $wait s (${ready:-not registered})" ;;
    esac
    log "node $NODE_NAME Ready in $((SECONDS - t0)) s; pods reach this machine at $(pod_gateway)"
}

daemon_alive() {
    kill -0 "$(awk -v n="$2" '$1==n{print $2}' "$1/pids")" 2>/dev/null
}

# Network namespaces of the node's pod sandboxes, from containerd (before it stops).
node_netns() {
    local id
    for id in $(ctr_ containers ls -q 2>/dev/null); do
        ctr_ containers info "$id" 2>/dev/null | python3 -c '
import json, sys
try:
    spec = json.load(sys.stdin).get("Spec", {})
except ValueError:
    sys.exit(0)
for ns in spec.get("linux", {}).get("namespaces", []):
    if ns.get("type") == "network" and ns.get("path", "").startswith("/") and not ns["path"].startswith("/proc/"):
        print(ns["path"])
'
    done | sort -u
}

# Part one of stopping a node, while the apiserver still runs: pods deleted so the kubelet stops
# their containers and tears down their networks through the CRI; then the kubelet stops, and
# what is still running is killed through containerd.
node_stop_pods() {
    local dir="$1" i
    DIR_="$dir" URL_=$(cat "$dir/url" 2>/dev/null || true) TOKEN_=$(cut -d, -f1 "$dir/tokens.csv" 2>/dev/null || true)
    NODE_SOCK="$dir/containerd/containerd.sock"
    if [ -n "$URL_" ] && daemon_alive "$dir" kubelet && daemon_alive "$dir" kube-apiserver; then
        local ns
        for ns in $(api GET /api/v1/namespaces 2>/dev/null | python3 -c '
import json, sys
try:
    print("\n".join(i["metadata"]["name"] for i in json.load(sys.stdin)["items"]))
except (ValueError, KeyError):
    pass
'); do
            api DELETE "/api/v1/namespaces/$ns/pods?gracePeriodSeconds=0" -o /dev/null 2>/dev/null || true
        done
        for i in $(seq 1 120); do
            [ -z "$(ctr_ tasks ls -q 2>/dev/null)" ] && break
            sleep 0.25
        done
    fi
    node_netns >"$dir/netns.list" 2>/dev/null || true
    # Host-path volumes live on this machine, outside DIR: remove them with the cluster.
    if [ -n "$URL_" ] && daemon_alive "$dir" kube-apiserver; then
        api GET /api/v1/persistentvolumes 2>/dev/null | python3 -c '
import json, sys
try:
    items = json.load(sys.stdin)["items"]
except (ValueError, KeyError):
    items = []
for pv in items:
    path = pv.get("spec", {}).get("hostPath", {}).get("path", "")
    if path.startswith("/tmp/hostpath_pv/") and "/.." not in path:
        print(path)
' >"$dir/hostpath.list" 2>/dev/null || true
    fi
    stop_daemon "$dir" kubelet
    stop_daemon "$dir" kube-scheduler
    if daemon_alive "$dir" containerd; then
        local t
        for t in $(ctr_ tasks ls -q 2>/dev/null); do
            ctr_ tasks kill -s SIGKILL "$t" >/dev/null 2>&1 || true
        done
        for i in $(seq 1 40); do
            [ -z "$(ctr_ tasks ls 2>/dev/null | awk 'NR>1 && $3!="STOPPED"')" ] && break
            sleep 0.25
        done
        for t in $(ctr_ tasks ls -q 2>/dev/null); do ctr_ tasks delete -f "$t" >/dev/null 2>&1 || true; done
    fi
    stop_daemon "$dir" containerd
}

# Part two, after every daemon stopped: whatever survived (shims and their containers, mounts under
# DIR, pod network namespaces, the bridge) is removed, then checked.
node_cleanup() {
    local dir="$1" p m left=""
    NODE_SOCK="$dir/containerd/containerd.sock"
    local shims
    shims=$(node_processes "$dir")
    if [ -n "$shims" ]; then
        for p in $shims; do kill -KILL "$p" 2>/dev/null || true; done
        # Their containers are orphans now: everything left in the kubelet's pod cgroups (only this
        # node's: the node lock admits one kubelet of ours per machine).
        for p in $(cat /sys/fs/cgroup/pids/kubepods/cgroup.procs /sys/fs/cgroup/pids/kubepods/*/cgroup.procs \
            /sys/fs/cgroup/pids/kubepods/*/*/cgroup.procs /sys/fs/cgroup/pids/kubepods/*/*/*/cgroup.procs 2>/dev/null); do
            kill -KILL "$p" 2>/dev/null || true
        done
    fi
    if [ -f "$dir/netns.list" ]; then
        while read -r m; do
            [ -e "$m" ] || continue
            umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
            rm -f "$m"
        done <"$dir/netns.list"
    fi
    unmount_under "$dir"
    if [ -f "$dir/hostpath.list" ]; then
        while read -r m; do rm -rf -- "$m"; done <"$dir/hostpath.list"
    fi
    local bridge
    bridge=$(cat "$dir/pod-bridge" 2>/dev/null || echo "$POD_BRIDGE")
    ip link del "$bridge" 2>/dev/null || true

    [ -z "$(node_processes "$dir")" ] || left="processes $(node_processes "$dir" | tr '\n' ' ')"
    m=$(awk -v d="$dir/" 'index($5, d) == 1 {print $5}' /proc/self/mountinfo)
    [ -z "$m" ] || left="$left mounts $m"
    if [ -n "$left" ]; then
        echo "kube-real: stop left behind: $left" >&2
        return 1
    fi
}

# Unmounts everything mounted below DIR, deepest first.
unmount_under() {
    local m
    for m in $(awk -v d="$1/" 'index($5, d) == 1 {print $5}' /proc/self/mountinfo | sort -r); do
        umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
    done
}

# Processes that belong to the node in DIR: shims and runc started for its containerd socket.
node_processes() {
    local dir="$1" f pid
    for f in /proc/[0-9]*/cmdline; do
        pid=${f#/proc/}
        pid=${pid%/cmdline}
        [ "$pid" = $$ ] && continue
        { tr '\0' ' ' <"$f"; } 2>/dev/null | grep -qF -- "$dir/containerd/" && echo "$pid"
    done
}

# TERM one recorded daemon, wait up to 10 s, then KILL.
stop_daemon() {
    local dir="$1" name="$2" pid i
    pid=$(awk -v n="$name" '$1==n{print $2}' "$dir/pids" 2>/dev/null)
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    for i in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
}
