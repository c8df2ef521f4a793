#!/bin/bash
# publish-system-bus-worker.sh - builds the system-bus-worker image for every
# architecture the cluster runs, pushes it, points the manifest at the pushed
# digest, rolls it out, verifies the NEW pods and the server's registrations,
# and writes a deploy receipt. Any failure after the apply rolls back.
#
# Usage: deploy/publish-system-bus-worker.sh [--dry-run] [--no-build] [TAG]
#   TAG         image tag (default: date +%Y%m%d-%H%M%S); :latest is pushed too
#   --dry-run   print the plan and change nothing
#   --no-build  deploy an image already pushed as :TAG (CI builds it)
#   -h, --help  this text
#
# Environment (defaults in brackets):
#   REGISTRY [ghcr.io]  OWNER [joelhooks]  IMAGE_NAME [system-bus-worker]
#   NAMESPACE [joelclaw]  DEPLOYMENT [system-bus-worker]
#   PLATFORMS [linux/arm64,linux/amd64]: every node's architecture must be one
#   MANIFEST [deploy/k8s/overlays/joelclaw/system-bus-worker-image.yaml]: the
#     file whose image line is rewritten; applied with `kubectl apply -k` on
#     its directory when that holds a kustomization.yaml, else `apply -f`
#   REGISTRY_USER [$OWNER]  ROLLOUT_TIMEOUT [180s]  WORKER_PORT [3111]
#   BUILDER [first of docker buildx, buildah, podman]
#   REGISTRY_TLS_VERIFY [true] (false only for a plain-HTTP test registry)
#   SYSBUS_URL: sysbusd for the re-sync check (default: a kubectl
#     port-forward to svc/sysbusd for the duration of the check)
#   GHCR_TOKEN, SECRETS_SOCKET: registry auth sources (see step 3)
#   SKIP_COMPILE=1: reuse binaries already built by deploy/image/build.sh
# Exit codes: 0 deployed; 1 a step failed (after the apply: rolled back);
# 2 usage.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
START=$(date +%s)
REGISTRY=${REGISTRY:-ghcr.io}
OWNER=${OWNER:-joelhooks}
IMAGE_NAME=${IMAGE_NAME:-system-bus-worker}
NAMESPACE=${NAMESPACE:-joelclaw}
DEPLOYMENT=${DEPLOYMENT:-system-bus-worker}
PLATFORMS=${PLATFORMS:-linux/arm64,linux/amd64}
MANIFEST=${MANIFEST:-$ROOT/deploy/k8s/overlays/joelclaw/system-bus-worker-image.yaml}
REGISTRY_USER=${REGISTRY_USER:-$OWNER}
ROLLOUT_TIMEOUT=${ROLLOUT_TIMEOUT:-180s}
WORKER_PORT=${WORKER_PORT:-3111}
REGISTRY_TLS_VERIFY=${REGISTRY_TLS_VERIFY:-true}
export REGISTRY_TLS_VERIFY
IMAGE="$REGISTRY/$OWNER/$IMAGE_NAME"

DRY_RUN=0
BUILD=1
TAG=""
usage() { sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit "${1:-2}"; }
while [ $# -gt 0 ]; do
    case "$1" in
    --dry-run) DRY_RUN=1 ;;
    --no-build) BUILD=0 ;;
    -h | --help) usage 0 ;;
    -*) echo "publish: unknown option '$1'" >&2; usage 2 ;;
    *) [ -z "$TAG" ] || { echo "publish: one TAG only" >&2; usage 2; }; TAG=$1 ;;
    esac
    shift
done
TAG=${TAG:-$(date +%Y%m%d-%H%M%S)}
case "$TAG" in *[!A-Za-z0-9_.-]* | .* | -*) echo "publish: bad tag '$TAG'" >&2; exit 2 ;; esac

STEP=0
step() { STEP=$1; shift; printf '==> [%s/8] %s\n' "$STEP" "$*" >&2; }
say() { printf '    %s\n' "$*" >&2; }
APPLIED=0   # set once kubectl apply may have changed the Deployment
PREV_REV="" # the Deployment's revision before the apply ("" = none)
fail() {
    echo "publish: step $STEP failed: $*" >&2
    exit 1 # the EXIT trap rolls back and restores the manifest
}
sha256() { # sha256 of stdin, hex
    if command -v sha256sum >/dev/null 2>&1; then sha256sum; else shasum -a 256; fi | cut -d' ' -f1
}
revision() {
    kubectl -n "$NAMESPACE" get deployment "$DEPLOYMENT" \
        -o jsonpath='{.metadata.annotations.deployment\.kubernetes\.io/revision}' 2>/dev/null
}
# Any failure after the apply (a failed step, set -e, Ctrl-C) goes back to
# the revision that ran before, if the apply changed it.
rollback() {
    local now
    now=$(revision || true)
    if [ -z "$PREV_REV" ]; then
        echo "publish: first deploy of deployment/$DEPLOYMENT: no earlier revision to roll back to (kubectl -n $NAMESPACE delete deployment/$DEPLOYMENT removes it)" >&2
    elif [ "$now" = "$PREV_REV" ]; then
        echo "publish: deployment/$DEPLOYMENT is still at revision $PREV_REV: nothing to roll back" >&2
    else
        echo "publish: rolling back: kubectl -n $NAMESPACE rollout undo deployment/$DEPLOYMENT --to-revision=$PREV_REV" >&2
        if kubectl -n "$NAMESPACE" rollout undo "deployment/$DEPLOYMENT" --to-revision="$PREV_REV" >&2 &&
            kubectl -n "$NAMESPACE" rollout status "deployment/$DEPLOYMENT" --timeout="$ROLLOUT_TIMEOUT" >&2; then
            echo "publish: rolled back to revision $PREV_REV" >&2
        else
            echo "publish: ROLLBACK FAILED: check kubectl -n $NAMESPACE rollout history deployment/$DEPLOYMENT" >&2
        fi
    fi
}

# ---- 1. tools --------------------------------------------------------------
step 1 "checking tools"
missing=""
need() { # need TOOL HOW-TO-INSTALL
    command -v "$1" >/dev/null 2>&1 || missing="$missing
    $1: $2"
}
BUILDER=${BUILDER:-}
if [ -z "$BUILDER" ]; then
    if command -v docker >/dev/null 2>&1 && docker buildx version >/dev/null 2>&1; then BUILDER=docker
    elif command -v buildah >/dev/null 2>&1; then BUILDER=buildah
    elif command -v podman >/dev/null 2>&1; then BUILDER=podman
    else missing="$missing
    an image builder: install docker with buildx, or buildah (apt-get install buildah)"
    fi
fi
need kubectl "https://kubernetes.io/docs/tasks/tools/ (or apt-get install kubernetes-client)"
need jq "apt-get install jq"
need sysbus "make && make install (sysbus's CLI, used to re-sync functions)"
need slog "make && make install (sysbus's operations log, for the deploy receipt)"
if [ "$BUILDER" != docker ] && [ -n "$BUILDER" ]; then
    need skopeo "apt-get install skopeo (reads back the pushed manifest list)"
fi
if [ -n "$missing" ]; then
    fail "missing tools:$missing"
fi
say "builder: $BUILDER; auth sources: GHCR_TOKEN, secrets lease ghcr_pat, gh auth token"

if [ "$DRY_RUN" = 1 ]; then
    cat <<EOF
plan (dry run: nothing is changed)
  1. tools ok (builder $BUILDER)
  2. temporary registry config in a mktemp -d directory, removed on exit
  3. log in to $REGISTRY as $REGISTRY_USER with the first token that works:
     GHCR_TOKEN${GHCR_TOKEN:+ (set)}; secrets lease ghcr_pat --ttl 20m --client-id publish-system-bus-worker; gh auth token
  4. read node architectures (kubectl get nodes); each must be in $PLATFORMS
  5. $( [ "$BUILD" = 1 ] && echo "build for $PLATFORMS and push" || echo "use the pushed" ) $IMAGE:$TAG and $IMAGE:latest; read back the digest
  6. rewrite the image line of $MANIFEST to $IMAGE:$TAG@sha256:<digest>;
     kubectl apply; kubectl -n $NAMESPACE rollout status deployment/$DEPLOYMENT --timeout=$ROLLOUT_TIMEOUT
  7. probe GET / on a pod of the new ReplicaSet; sysbus refresh; every function registered
  8. slog write --action deploy --tool system-bus-worker (on failure after 6: rollout undo)
EOF
    exit 0
fi

# ---- 2. temporary registry config -------------------------------------------
step 2 "temporary registry config"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/publish-sbw.XXXXXX")
PF_PID=""
MANIFEST_BACKUP="$WORK/manifest.orig"
on_exit() {
    local rc=$?
    [ -z "$PF_PID" ] || kill "$PF_PID" 2>/dev/null || true
    if [ "$rc" -ne 0 ]; then
        [ "$APPLIED" = 0 ] || rollback
        if [ -f "$MANIFEST_BACKUP" ]; then cp "$MANIFEST_BACKUP" "$MANIFEST" && say "restored $MANIFEST"; fi
    fi
    rm -rf "$WORK"
    exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT TERM
# Only the credentials are fresh: the user's docker contexts, CLI plugins
# (buildx) and builders stay reachable, credsStore/credHelpers do not.
user_docker=${DOCKER_CONFIG:-${HOME:-/nonexistent}/.docker}
export DOCKER_CONFIG="$WORK/docker"
export REGISTRY_AUTH_FILE="$WORK/auth.json"
mkdir -p "$DOCKER_CONFIG"
for d in contexts cli-plugins buildx; do
    if [ -e "$user_docker/$d" ]; then ln -s "$user_docker/$d" "$DOCKER_CONFIG/$d"; fi
done
if [ -f "$user_docker/config.json" ]; then
    jq '{currentContext, cliPluginsExtraDirs} | with_entries(select(.value != null))' \
        "$user_docker/config.json" >"$DOCKER_CONFIG/config.json" 2>/dev/null || echo '{}' >"$DOCKER_CONFIG/config.json"
else
    echo '{}' >"$DOCKER_CONFIG/config.json"
fi
echo '{}' >"$REGISTRY_AUTH_FILE"
say "DOCKER_CONFIG and REGISTRY_AUTH_FILE in $WORK (no desktop credential helper)"

# ---- 3. registry auth ------------------------------------------------------
step 3 "registry auth"
SOURCES=("GHCR_TOKEN" "secrets lease ghcr_pat" "gh auth token")
SOURCE_IDX=-1
AUTH_SOURCE=""
token_from() { # prints the token of source $1 on stdout, or fails
    case "$1" in
    "GHCR_TOKEN") [ -n "${GHCR_TOKEN:-}" ] && printf '%s' "$GHCR_TOKEN" ;;
    "secrets lease ghcr_pat")
        command -v secrets >/dev/null 2>&1 &&
            secrets lease ghcr_pat --ttl 20m --client-id publish-system-bus-worker 2>"$WORK/secrets.err" ;;
    "gh auth token") command -v gh >/dev/null 2>&1 && gh auth token 2>/dev/null ;;
    esac
}
registry_login() { # token on stdin
    case "$BUILDER" in
    docker) docker login "$REGISTRY" -u "$REGISTRY_USER" --password-stdin >"$WORK/login.out" 2>&1 ;;
    *) "$BUILDER" login --authfile "$REGISTRY_AUTH_FILE" --tls-verify="$REGISTRY_TLS_VERIFY" \
        -u "$REGISTRY_USER" --password-stdin "$REGISTRY" >"$WORK/login.out" 2>&1 ;;
    esac
}
# auth_next: logs in with the next source that yields a token the registry
# accepts; returns 1 when none is left.
auth_next() {
    while [ $((SOURCE_IDX + 1)) -lt ${#SOURCES[@]} ]; do
        SOURCE_IDX=$((SOURCE_IDX + 1))
        local src=${SOURCES[$SOURCE_IDX]} token
        if ! token=$(token_from "$src") || [ -z "$token" ]; then
            case "$src" in
            "secrets lease ghcr_pat") say "$src: no token ($(head -c 300 "$WORK/secrets.err" 2>/dev/null || echo 'secrets not installed'))" ;;
            *) say "$src: no token" ;;
            esac
            continue
        fi
        if printf '%s' "$token" | registry_login; then
            AUTH_SOURCE=$src
            say "auth: using $src"
            return 0
        fi
        token=""
        if grep -qiE '401|403|unauthori[sz]ed|denied|invalid username|password' "$WORK/login.out"; then
            say "$src: token rejected by $REGISTRY ($(tail -n 1 "$WORK/login.out" | cut -c1-120)); fix: create a token with write:packages (read:packages too) and store it with 'secrets add ghcr_pat'; trying the next source"
        else
            say "$src: login failed: $(tail -c 300 "$WORK/login.out")"
        fi
    done
    return 1
}
auth_next || fail "no auth source worked for $REGISTRY (tried: ${SOURCES[*]}); set GHCR_TOKEN to a token with write:packages, or 'secrets add ghcr_pat'"

# ---- 4. target architecture -------------------------------------------------
step 4 "target architecture"
nodes_out=$(kubectl get nodes -o jsonpath='{range .items[*]}{.status.nodeInfo.architecture}{"\n"}{end}' 2>"$WORK/nodes.err") ||
    fail "kubectl get nodes: $(head -c 300 "$WORK/nodes.err"); is the kube context right? (kubectl config current-context)"
NODE_ARCHS=$(echo "$nodes_out" | sed '/^$/d' | sort -u | tr '\n' ' ')
[ -n "$NODE_ARCHS" ] || fail "the cluster reports no nodes"
for a in $NODE_ARCHS; do
    case ",$PLATFORMS," in
    *",linux/$a,"*) ;;
    *) fail "the cluster has $a nodes but PLATFORMS=$PLATFORMS has no linux/$a: the pods would fail with 'exec format error'" ;;
    esac
done
say "nodes: $NODE_ARCHS; platforms: $PLATFORMS"

# ---- 5. build, push, read back ---------------------------------------------
inspect_raw() { # prints the raw manifest (list) of $1
    case "$BUILDER" in
    docker) docker buildx imagetools inspect --raw "$1" ;;
    *) skopeo inspect --raw --authfile "$REGISTRY_AUTH_FILE" --tls-verify="$REGISTRY_TLS_VERIFY" "docker://$1" ;;
    esac
}
if [ "$BUILD" = 1 ]; then
    step 5 "build for $PLATFORMS and push $IMAGE:$TAG and :latest"
    build_args=(--builder "$BUILDER" --platforms "$PLATFORMS" --tag "$IMAGE:$TAG" --tag "$IMAGE:latest"
        --push --digest-file "$WORK/digest")
    [ "${SKIP_COMPILE:-0}" != 1 ] || build_args+=(--skip-compile)
    # A refused push moves on to the next auth source. Some builders (buildah
    # 1.28) exit 0 when the registry refuses a blob upload with 403, so a push
    # only counts once the registry serves the tag back.
    while :; do
        refused=""
        if "$ROOT/deploy/image/build.sh" "${build_args[@]}" worker 2>"$WORK/build.err"; then
            if raw=$(inspect_raw "$IMAGE:$TAG" 2>"$WORK/inspect.err"); then
                break
            fi
            refused="the builder reported success but the registry does not serve :$TAG ($(tail -c 200 "$WORK/inspect.err"))"
        elif grep -qiE '403 Forbidden|denied: |unauthorized: |requested access to the resource is denied' "$WORK/build.err"; then
            tail -n 5 "$WORK/build.err" >&2
            refused="the registry refused the push (403)"
        else
            tail -n 20 "$WORK/build.err" >&2
            fail "build or push failed (above)"
        fi
        say "$AUTH_SOURCE: $refused: the token lacks write:packages; trying the next source"
        auth_next || fail "no token could push to $IMAGE ($refused); create a token with write:packages"
        build_args+=(--skip-compile)
    done
else
    step 5 "using the pushed $IMAGE:$TAG"
    raw=$(inspect_raw "$IMAGE:$TAG") || fail "cannot read back $IMAGE:$TAG from $REGISTRY"
fi
DIGEST="sha256:$(printf '%s' "$raw" | sha256)"
if [ -s "$WORK/digest" ] && [ "$(cat "$WORK/digest")" != "$DIGEST" ]; then
    fail "the registry holds $DIGEST for :$TAG, but the push reported $(cat "$WORK/digest")"
fi
latest=$(inspect_raw "$IMAGE:latest" | sha256) || fail "cannot read back $IMAGE:latest"
if [ "$BUILD" = 1 ] && [ "sha256:$latest" != "$DIGEST" ]; then
    fail ":latest ($latest) is not the image just pushed ($DIGEST)"
fi
PUSHED_ARCHS=$(printf '%s' "$raw" | jq -r '.manifests[]?.platform | select(.os == "linux") | .architecture' | sort -u | tr '\n' ' ')
for a in $NODE_ARCHS; do
    case " $PUSHED_ARCHS " in
    *" $a "*) ;;
    *) fail "$IMAGE:$TAG has no linux/$a variant (it has: ${PUSHED_ARCHS:-none, not a manifest list}); refusing to deploy it to $a nodes" ;;
    esac
done
say "pushed $IMAGE:$TAG@$DIGEST (platforms: $PUSHED_ARCHS)"

# ---- 6. manifest, apply, rollout -------------------------------------------
step 6 "rewrite $MANIFEST, apply, wait for the rollout"
[ -f "$MANIFEST" ] || fail "manifest $MANIFEST not found (set MANIFEST)"
cp "$MANIFEST" "$MANIFEST_BACKUP"
NEW_REF="$IMAGE:$TAG@$DIGEST"
image_re=$(printf '%s' "$IMAGE" | sed 's/[.[\*^$/]/\\&/g')
matches=$(grep -cE "^[[:space:]]*(- )?image:[[:space:]]*\"?$image_re([:@][^[:space:]\"]*)?\"?[[:space:]]*$" "$MANIFEST" || true)
[ "$matches" -gt 0 ] || fail "no 'image: $IMAGE...' line in $MANIFEST"
# (no sed -i: BSD sed on macOS spells it differently)
sed -E "s#^([[:space:]]*(- )?image:[[:space:]]*)\"?$image_re([:@][^[:space:]\"]*)?\"?[[:space:]]*\$#\\1$NEW_REF#" \
    "$MANIFEST_BACKUP" >"$WORK/manifest.new"
cat "$WORK/manifest.new" >"$MANIFEST"
grep -qF "image: $NEW_REF" "$MANIFEST" || fail "rewriting $MANIFEST did not produce $NEW_REF"
say "image: $NEW_REF ($matches line(s))"
if [ -f "$(dirname "$MANIFEST")/kustomization.yaml" ]; then
    apply_args=(-k "$(dirname "$MANIFEST")")
else
    apply_args=(-f "$MANIFEST")
fi
PREV_REV=$(revision || true)
APPLIED=1
kubectl apply "${apply_args[@]}" >&2 || fail "kubectl apply ${apply_args[*]} failed"
kubectl -n "$NAMESPACE" rollout status "deployment/$DEPLOYMENT" --timeout="$ROLLOUT_TIMEOUT" >&2 ||
    fail "rollout of deployment/$DEPLOYMENT did not finish in $ROLLOUT_TIMEOUT (kubectl -n $NAMESPACE describe deployment/$DEPLOYMENT)"

# ---- 7. verify the new pods and the registrations ---------------------------
step 7 "probe a pod of the new ReplicaSet, re-sync functions"
revision=$(revision) || fail "cannot read the deployment's revision"
selector=$(kubectl -n "$NAMESPACE" get deployment "$DEPLOYMENT" -o json | jq -r '.spec.selector.matchLabels | to_entries | map("\(.key)=\(.value)") | join(",")') ||
    fail "cannot read the deployment's selector"
hash=$(kubectl -n "$NAMESPACE" get rs -l "$selector" -o json |
    jq -r --arg rev "$revision" '.items[] | select(.metadata.annotations["deployment.kubernetes.io/revision"] == $rev) | .metadata.labels["pod-template-hash"]' | head -1)
[ -n "$hash" ] || fail "no ReplicaSet of revision $revision"
pod=$(kubectl -n "$NAMESPACE" get pods -l "$selector,pod-template-hash=$hash" -o json |
    jq -r '[.items[] | select(.status.phase == "Running")][0].metadata.name // empty')
[ -n "$pod" ] || fail "no running pod in the new ReplicaSet (pod-template-hash=$hash)"
health=$(kubectl -n "$NAMESPACE" get --raw "/api/v1/namespaces/$NAMESPACE/pods/$pod:$WORKER_PORT/proxy/" 2>"$WORK/health.err") ||
    fail "health endpoint of pod $pod did not answer 200: $(head -c 300 "$WORK/health.err")"
printf '%s' "$health" | jq -e . >/dev/null 2>&1 || fail "pod $pod's health endpoint did not return JSON"
dup=$(printf '%s' "$health" | jq -r 'if (.worker | type) == "object" and (.worker | has("hasDuplicateFunctionIds"))
    then .worker.hasDuplicateFunctionIds elif has("hasDuplicateFunctionIds") then .hasDuplicateFunctionIds else "missing" end')
[ "$dup" = false ] ||
    fail "pod $pod reports duplicate function ids: $(printf '%s' "$health" | jq -c '.worker.duplicateFunctionIds // .duplicateFunctionIds')"
count=$(printf '%s' "$health" | jq -r '.count // (.functions | length) // 0')
[ "$count" -gt 0 ] || fail "pod $pod serves no functions"
say "pod $pod (ReplicaSet $hash, revision $revision): healthy, $count functions"

if [ -z "${SYSBUS_URL:-}" ]; then
    kubectl -n "$NAMESPACE" port-forward svc/sysbusd :8288 >"$WORK/pf.out" 2>&1 &
    PF_PID=$!
    for _ in $(seq 100); do
        port=$(sed -n 's/^Forwarding from 127.0.0.1:\([0-9]*\).*/\1/p' "$WORK/pf.out" | head -1)
        [ -z "$port" ] || break
        kill -0 "$PF_PID" 2>/dev/null || break
        sleep 0.1
    done
    [ -n "${port:-}" ] || fail "kubectl port-forward svc/sysbusd failed: $(head -c 300 "$WORK/pf.out")"
    SYSBUS_URL="http://127.0.0.1:$port"
fi
export SYSBUS_URL
# The server's REST API wants its signing key: from the environment, else
# from the cluster's Secret (into the environment only, never argv).
if [ -z "${SYSBUS_SIGNING_KEY:-}" ]; then
    key=$(kubectl -n "$NAMESPACE" get secret sysbusd-env -o jsonpath='{.data.SYSBUS_SIGNING_KEY}' 2>/dev/null | base64 -d 2>/dev/null || true)
    if [ -n "$key" ]; then
        export SYSBUS_SIGNING_KEY="$key"
        say "signing key: from Secret sysbusd-env"
    else
        say "signing key: none (SYSBUS_SIGNING_KEY unset and no Secret sysbusd-env): a dev server?"
    fi
    key=""
fi
app=$(printf '%s' "$health" | jq -r '.appId // ("system-bus-" + (.worker.role // "cluster"))')
sysbus refresh --app "$app" >"$WORK/refresh.json" 2>"$WORK/refresh.err" ||
    fail "sysbus refresh --app $app failed: $(jq -c '.error // .' "$WORK/refresh.json" 2>/dev/null || head -c 300 "$WORK/refresh.err")"
sysbus functions --app "$app" >"$WORK/functions.json" 2>"$WORK/functions.err" ||
    fail "sysbus functions --app $app failed: $(jq -c '.error // .' "$WORK/functions.json" 2>/dev/null || head -c 300 "$WORK/functions.err")"
unregistered=$(jq -r --arg app "$app" --slurpfile reg "$WORK/functions.json" \
    '.functions[] as $f | select(([$reg[0].result[]?.id | select(. == $f or . == ($app + "-" + $f))] | length) == 0) | $f' <<<"$health") ||
    fail "cannot compare the served and registered functions"
[ -z "$unregistered" ] || fail "functions served by the new build but not registered in sysbusd for $app: $(echo "$unregistered" | tr '\n' ' ')"
say "every function of the new build is registered ($count)"

# ---- 8. receipt ------------------------------------------------------------
step 8 "deploy receipt"
APPLIED=0
rm -f "$MANIFEST_BACKUP" # deployed: the rewritten manifest stays, whatever happens next
duration=$(($(date +%s) - START))
slog write --action deploy --tool system-bus-worker --detail "$IMAGE@$DIGEST" \
    --reason "publish $TAG: rollout of deployment/$DEPLOYMENT in $NAMESPACE ok, $count functions registered (auth: $AUTH_SOURCE)" ||
    { echo "publish: deployed, but the slog receipt could not be written (above)" >&2; exit 1; }
echo "image:    $IMAGE:$TAG"
echo "digest:   $DIGEST"
echo "duration: ${duration}s"
