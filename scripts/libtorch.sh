#!/usr/bin/env bash
# Installs libtorch 2.13.0 (the CPU-usable subset of PyPI's torch wheel) into a
# per-user folder shared by every clone, and prints that folder's `torch` path.
#
# tch 0.26 links against exactly PyTorch 2.13.0. PyPI's Linux wheel is a CUDA
# build whose libtorch_cpu.so links libcudart.so.13 and libcupti.so.13, so the
# two small NVIDIA runtime wheels come along; the other CUDA wheels (about 4.7 GB)
# are not needed on a CPU machine. Set XP_LIBTORCH_HOME to install elsewhere.
set -euo pipefail

version=2.13.0
home="${XP_LIBTORCH_HOME:-${XDG_DATA_HOME:-$HOME/.local/share}/xp/libtorch-$version}"
marker="$home/.complete"

if [ ! -f "$marker" ]; then
    echo "xp: installing libtorch $version into $home (about 1.2 GB, once per user)" >&2
    staging="$home.partial.$$"
    rm -rf "$staging"
    trap 'rm -rf "$staging"' EXIT
    python3 -m pip install --quiet --no-deps --target "$staging" \
        "torch==$version" nvidia-cuda-runtime==13.0.96 nvidia-cuda-cupti==13.0.85 >&2
    test -f "$staging/torch/lib/libtorch_cpu.so" || {
        echo "xp: libtorch install in $staging has no torch/lib/libtorch_cpu.so" >&2
        exit 1
    }
    touch "$staging/.complete"
    mkdir -p "$(dirname "$home")"
    rm -rf "$home"
    mv "$staging" "$home"
    trap - EXIT
fi
echo "$home/torch"
