#!/usr/bin/env bash
# Lambda's control plane with the clients people script with (Debian's awscli and
# python3-boto3), against the real kilnd binary without KVM (fake-kiln-vmm, as cli_test) and an
# image in a local registry (Debian's docker-registry; the examples/hello layout pushed with
# skopeo): create-function, the function-active waiter, get-function, list-functions with pages,
# update-function-configuration, invoke, an image that cannot be pulled (State Failed),
# delete-function, and the errors (missing function, bad memory size, duplicate create, Zip);
# then the same subset through boto3 (lambda_boto3_check.py), and boto3 with a tenant's token.
# Dummy credentials, every call to 127.0.0.1.
set -euo pipefail
build=${KILN_BUILD_DIR:?}
src=${KILN_SOURCE_DIR:?}
aws=/usr/bin/aws  # Debian's, not whatever else is first on PATH
python=/usr/bin/python3
for tool in "$aws" "$python" docker-registry skopeo; do
  command -v "$tool" >/dev/null || { echo "FAIL: $tool is missing (scripts/setup installs it)"; exit 1; }
done
"$python" -c 'import boto3' 2>/dev/null || { echo "FAIL: python3-boto3 is missing (scripts/setup installs it)"; exit 1; }

tmp=$(mktemp -d)
cleanup() {
  local pid
  for pid in ${kilnd_pid:-} ${registry_pid:-}; do kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; echo "--- kilnd:"; tail -n 20 "$tmp/kilnd.out" 2>/dev/null; exit 1; }
wait_until() {  # wait_until SECONDS WHAT CMD...: CMD succeeds before the deadline
  local end=$(( $(date +%s) + $1 )) what=$2
  shift 2
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt $end ] || fail "$what within the deadline"
    sleep 0.1  # poll interval, the deadline decides
  done
}
free_port() { "$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# --- the image in a local registry ----------------------------------------------------------------
reg_port=$(free_port)
cat >"$tmp/registry.yml" <<EOF
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $tmp/registry
http:
  addr: 127.0.0.1:$reg_port
EOF
docker-registry serve "$tmp/registry.yml" >"$tmp/registry.log" 2>&1 &
registry_pid=$!
wait_until 30 "docker-registry answering /v2/" curl -sf "http://127.0.0.1:$reg_port/v2/"
image=127.0.0.1:$reg_port/hello:latest
skopeo --insecure-policy copy -q --dest-tls-verify=false "oci:$build/examples/hello/oci:latest" "docker://$image" ||
  fail "pushing the hello image to the local registry"

# --- kilnd: real binary, no KVM (the fake VMM boots nothing) -----------------------------------------
start_kilnd() {  # start_kilnd STATE [kilnd args...] -> $kilnd_pid, $endpoint
  local state=$1
  shift
  "$build/src/kilnd" --listen 127.0.0.1:0 --state-dir "$state" --vmm "$build/tests/unit/kilnd/fake-kiln-vmm" \
    --kernel "$build/src/kiln" --jail off --snapshots off "$@" >"$tmp/kilnd.out" 2>&1 &
  kilnd_pid=$!
  wait_until 30 "kilnd listening" grep -q 'kilnd: listening on 127.0.0.1:' "$tmp/kilnd.out"
  endpoint=http://$(grep -o 'kilnd: listening on 127.0.0.1:[0-9]*' "$tmp/kilnd.out" | head -n 1 | cut -d' ' -f4)
}
start_kilnd "$tmp/state"

# Dummy credentials; no config files, no instance metadata, no pager.
export AWS_ACCESS_KEY_ID=AKIAKILNTEST00000000 AWS_SECRET_ACCESS_KEY=kiln-test-secret AWS_DEFAULT_REGION=us-east-1
export AWS_CONFIG_FILE=$tmp/aws-config AWS_SHARED_CREDENTIALS_FILE=$tmp/aws-credentials AWS_EC2_METADATA_DISABLED=true
export AWS_PAGER="" HOME=$tmp

lambda() { "$aws" lambda --endpoint-url "$endpoint" "$@"; }
run() {  # run aws-lambda-args...: prints the command and its output; fails the test on an error
  echo "\$ aws lambda $*"
  lambda "$@" 2>&1 | tee "$tmp/out" || fail "aws lambda $1"
}
refused() {  # refused ERROR_TYPE aws-args...: the command fails with that Lambda error
  local want=$1
  shift
  echo "\$ aws lambda $*"
  if lambda "$@" >"$tmp/out" 2>&1; then cat "$tmp/out"; fail "aws lambda $1 succeeded, want $want"; fi
  cat "$tmp/out"
  grep -q "($want)" "$tmp/out" || fail "aws lambda $1: want $want"
}
field() {  # field KEY...: the member of the last output's JSON, Python's repr for lists
  "$python" -c 'import json, sys; d = json.load(open(sys.argv[1])); [d := d[k] for k in sys.argv[2:]]; print(d)' \
    "$tmp/out" "$@"
}

run create-function --function-name f --package-type Image --code "ImageUri=$image" \
  --role arn:aws:iam::000000000000:role/x --memory-size 256 --timeout 10 --environment 'Variables={STAGE=test}'
[ "$(field FunctionArn)" = "arn:aws:lambda:local:000000000000:function:f" ] || fail "create-function: FunctionArn"
echo "\$ aws lambda wait function-active-v2 --function-name f"
lambda wait function-active-v2 --function-name f || fail "f never became Active: $(lambda get-function --function-name f)"
run get-function --function-name f
[ "$(field Configuration State)" = Active ] || fail "get-function: State"
[ "$(field Configuration LastUpdateStatus)" = Successful ] || fail "get-function: LastUpdateStatus"
[ "$(field Code ImageUri)" = "$image" ] || fail "get-function: Code.ImageUri"
case "$(field Code ResolvedImageUri)" in 127.0.0.1:$reg_port/hello@sha256:*) ;; *) fail "get-function: ResolvedImageUri" ;; esac

for n in g h; do
  lambda create-function --function-name $n --package-type Image --code "ImageUri=$image" \
    --role arn:aws:iam::000000000000:role/x >/dev/null || fail "create-function $n"
done
run list-functions --max-items 2 --query '{names: Functions[].FunctionName, next: NextToken}'
[ "$(field names)" = "['f', 'g']" ] || fail "list-functions: first page"
token=$(field next)
run list-functions --max-items 2 --starting-token "$token" --query '{names: Functions[].FunctionName, next: NextToken}'
[ "$(field names)" = "['h']" ] || fail "list-functions: second page"
run list-functions --page-size 1 --query 'Functions[].FunctionName'  # three requests of one, one answer
[ "$(cat "$tmp/out" | tr -d ' \n')" = '["f","g","h"]' ] || fail "list-functions --page-size 1"

run update-function-configuration --function-name f --memory-size 1024 --timeout 30
[ "$(field MemorySize)" = 1024 ] || fail "update-function-configuration: MemorySize"
run get-function-configuration --function-name f --query '{MemorySize: MemorySize, Timeout: Timeout, State: State, LastUpdateStatus: LastUpdateStatus}'
[ "$(field MemorySize)" = 1024 ] || fail "get-function-configuration: MemorySize"

echo "\$ aws lambda invoke --function-name f --payload '{\"k\":1}' --cli-binary-format raw-in-base64-out out.json"
lambda invoke --function-name f --payload '{"k":1}' --cli-binary-format raw-in-base64-out "$tmp/invoke.json" |
  tee "$tmp/out" || fail "invoke"
[ "$(field StatusCode)" = 200 ] || fail "invoke: StatusCode"

refused ResourceNotFoundException get-function --function-name nope
refused InvalidParameterValueException update-function-configuration --function-name f --memory-size 20000  # botocore checks only the minimum itself
refused InvalidParameterValueException create-function --function-name z --package-type Image \
  --code "ImageUri=$image" --role arn:aws:iam::000000000000:role/x --memory-size 20000
refused ResourceConflictException create-function --function-name f --package-type Image --code "ImageUri=$image" \
  --role arn:aws:iam::000000000000:role/x
"$python" -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1], "w").writestr("app.py", "")' "$tmp/fn.zip"
refused InvalidParameterValueException create-function --function-name z --package-type Zip --zip-file "fileb://$tmp/fn.zip" \
  --role arn:aws:iam::000000000000:role/x --runtime python3.11 --handler app.handler

# An image the registry does not have: State and LastUpdateStatus say Failed, with the reason.
lambda create-function --function-name broken --package-type Image --code "ImageUri=127.0.0.1:$reg_port/nope:1" \
  --role arn:aws:iam::000000000000:role/x >/dev/null || fail "create-function broken"
failed() { [ "$(lambda get-function-configuration --function-name broken --query State --output text)" = Failed ]; }
wait_until 60 "broken's State Failed" failed
run get-function-configuration --function-name broken \
  --query '{State: State, StateReasonCode: StateReasonCode, StateReason: StateReason, LastUpdateStatus: LastUpdateStatus}'
[ "$(field LastUpdateStatus)" = Failed ] || fail "broken: LastUpdateStatus"

for n in f g h broken; do run delete-function --function-name $n; done
refused ResourceNotFoundException delete-function --function-name f
run list-functions
[ "$(field Functions)" = "[]" ] || fail "list-functions after delete"

# --- boto3: the same subset ----------------------------------------------------------------------
"$python" "$src/tests/unit/kilnd/lambda_boto3_check.py" "$endpoint" "$image" || fail "boto3"

# --- boto3 with tenants: a bearer token instead of SigV4 (the aws CLI cannot send one) -----------------
kill "$kilnd_pid" && wait "$kilnd_pid" || fail "kilnd did not stop cleanly"
echo '{"tenants": [{"name": "acme", "token": "acme-token-0123456789"}]}' >"$tmp/tenants.json"
start_kilnd "$tmp/state-tenants" --tenants "$tmp/tenants.json"
"$python" "$src/tests/unit/kilnd/lambda_boto3_check.py" "$endpoint" "$image" acme-token-0123456789 || fail "boto3, tenant"
echo "lambda-clients: ok"
