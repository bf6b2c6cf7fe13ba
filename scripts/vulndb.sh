#!/usr/bin/env bash
# Builds the Go vulnerability database that `make vuln` gives govulncheck,
# offline, from the golang.org/x/vulndb module as the module proxy serves
# it (its data/osv holds one OSV report per advisory), and prints the
# database's directory. The vulndb module's own indexer (cmd/indexdb) writes
# the v1 layout govulncheck reads with -db file://...: index/db.json,
# index/modules.json, index/vulns.json and ID/<id>.json.
#
#   scripts/vulndb.sh           build (once per version) and print the path
#
# Environment:
#   VULNDB_VERSION  the x/vulndb version (default: the pinned one below);
#                   "latest" asks the module proxy for its newest
#   VULNDB_DIR      where databases are kept (default bin/vulndb), one
#                   directory per version, so `make test` builds it once
#
# The version is pinned so that a build does not start failing on its own;
# moving it is a commit that says which advisories came with it:
#   VULNDB_VERSION=latest scripts/vulndb.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH
export GOTOOLCHAIN=go1.27.3

version=${VULNDB_VERSION:-v0.0.0-20261105234957-e22db6528018}
root=${VULNDB_DIR:-bin/vulndb}

if [ "$version" = latest ]; then
	if ! version=$(go list -m -f '{{.Version}}' golang.org/x/vulndb@latest); then
		echo "vulndb: cannot resolve golang.org/x/vulndb@latest on the module proxy" >&2
		exit 1
	fi
fi
case $version in
v*) ;;
*)
	echo "vulndb: VULNDB_VERSION '$version' is not a module version (v...) nor 'latest'" >&2
	exit 2
	;;
esac

mkdir -p "$root"
db=$(cd "$root" && pwd)/$version
# A database is complete once its index is in place: the indexer writes
# into a temporary directory that is renamed only when it succeeded.
if [ -s "$db/index/modules.json" ] && [ -s "$db/index/db.json" ]; then
	echo "$db"
	exit 0
fi

if ! GOFLAGS=-mod=mod go mod download "golang.org/x/vulndb@$version" ||
	! src=$(GOFLAGS=-mod=mod go list -m -f '{{.Dir}}' "golang.org/x/vulndb@$version") || [ -z "$src" ]; then
	echo "vulndb: cannot download golang.org/x/vulndb@$version from the module proxy" >&2
	exit 1
fi
if [ ! -d "$src/data/osv" ]; then
	echo "vulndb: golang.org/x/vulndb@$version has no data/osv directory ($src)" >&2
	exit 1
fi

tmp=$(mktemp -d "$root/.build-$version.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
echo "vulndb: indexing $(find "$src/data/osv" -name '*.json' | wc -l) reports of golang.org/x/vulndb@$version into $db" >&2
if ! GOFLAGS=-mod=mod go run "golang.org/x/vulndb/cmd/indexdb@$version" \
	-vulns "$src/data/osv" -out "$tmp/db" >"$tmp/indexdb.log" 2>&1; then
	echo "vulndb: indexing golang.org/x/vulndb@$version failed:" >&2
	sed 's/^/  /' "$tmp/indexdb.log" >&2
	exit 1
fi
for f in index/db.json index/modules.json index/vulns.json; do
	if [ ! -s "$tmp/db/$f" ]; then
		echo "vulndb: the indexer wrote no $f" >&2
		exit 1
	fi
done
rm -rf "$db"
mv "$tmp/db" "$db"
echo "$db"
