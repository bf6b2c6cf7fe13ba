#!/usr/bin/env bash
# The test of `make vuln`: shows that the check can fail. With the offline
# database scripts/vulndb.sh builds, govulncheck must
#   - find advisory GO-2026-6865 in the database, indexed under
#     github.com/klauspost/compress (a zstd frame of two blocks panics the
#     decoder; fixed in v1.20.2);
#   - report it, and exit 3 (a vulnerability the code reaches), for a small
#     module (testdata/vulnfixture) that decodes zstd as the collector does
#     with compress v1.20.1;
#   - not report it for the same module with compress v1.20.2.
# Run by `make vuln` after scripts/deps.sh has installed bin/tools/govulncheck.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH
export GOTOOLCHAIN=go1.27.3
PATH=$(go env GOROOT)/bin:$PATH
export PATH

id=GO-2026-6865
module=github.com/klauspost/compress
govulncheck=$PWD/bin/tools/govulncheck
if [ ! -x "$govulncheck" ]; then
	echo "test-vuln: $govulncheck missing; run scripts/deps.sh" >&2
	exit 1
fi
db=$(scripts/vulndb.sh)

fail() {
	echo "test-vuln: FAIL: $*" >&2
	exit 1
}

[ -s "$db/ID/$id.json" ] || fail "$db/ID/$id.json missing from the database"
grep -q "\"$id\"" "$db/index/modules.json" || fail "$id not in $db/index/modules.json"
grep -q "\"$module\"" "$db/index/modules.json" || fail "$module not in $db/index/modules.json"

work=$(mktemp -d /tmp/weir-vulnfixture.XXXXXX)
trap 'rm -rf "$work"' EXIT
cp -r scripts/testdata/vulnfixture/. "$work/"

# scan VERSION: runs govulncheck on the fixture with compress at VERSION,
# leaving its output in $work/out and its exit code in $rc.
scan() {
	(cd "$work" && GOFLAGS=-mod=mod go mod edit -require="$module@$1" &&
		GOFLAGS=-mod=mod go mod tidy) || fail "fixture: cannot require $module@$1"
	rc=0
	(cd "$work" && "$govulncheck" -db "file://$db" ./...) >"$work/out" 2>&1 || rc=$?
}

scan v1.20.1
if [ "$rc" -ne 3 ] || ! grep -q "Vulnerability #[0-9]*: $id" "$work/out"; then
	sed 's/^/  /' "$work/out" >&2
	fail "govulncheck exited $rc and did not report $id as reachable in the fixture with $module v1.20.1 (want exit 3 and $id)"
fi
echo "test-vuln: $id reported as reachable with $module v1.20.1 (exit $rc)"

scan v1.20.2
if grep -q "$id" "$work/out"; then
	sed 's/^/  /' "$work/out" >&2
	fail "govulncheck still reports $id with $module v1.20.2, which fixes it"
fi
echo "test-vuln: $id not reported with $module v1.20.2 (exit $rc)"
echo "test-vuln: passed"
