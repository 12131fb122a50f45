#!/usr/bin/env bash
# Prepares a fresh Debian 12 machine (as root, or with sudo) for running and testing e500-gdbstub:
#   - system tools: gdb-multiarch (the client), qemu-system-ppc (reference machine for the guest tests;
#     ipxe-qemu holds the option ROM its default NIC needs, so a plain `-M ppce500 -kernel` starts),
#     the powerpc cross gcc/binutils (`make guests`), python3-venv; u-boot-qemu (the qemu-ppce500 U-Boot
#     the firmware tests boot on both machines); gcc and libc6-dev for the host (benchmarks/ builds a
#     QEMU plugin that counts QEMU's instructions);
#   - .venv with the project installed in editable mode with its test extras.
# Idempotent: apt runs only when a package is missing, pip only when pyproject.toml changed.
set -euo pipefail
cd "$(dirname "$0")/.."

SYSTEM_PACKAGES=(make gdb-multiarch binutils-powerpc-linux-gnu gcc-powerpc-linux-gnu qemu-system-ppc ipxe-qemu u-boot-qemu
                 python3 python3-venv python3-pip gcc libc6-dev)
VENV=.venv
STAMP="$VENV/.setup-stamp"

missing=()
for package in "${SYSTEM_PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$package")
    fi
done
if ((${#missing[@]})); then
    echo "setup: installing ${missing[*]}"
    sudo=()
    if [ "$(id -u)" -ne 0 ]; then sudo=(sudo); fi
    "${sudo[@]}" apt-get update -q
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null
fi

if [ ! -x "$VENV/bin/python" ]; then
    echo "setup: creating $VENV"
    python3 -m venv "$VENV"
fi

wanted="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$wanted" ] || [ ! -x "$VENV/bin/e500-gdbstub" ]; then
    echo "setup: installing the project into $VENV"
    "$VENV/bin/python" -m pip install -q --upgrade pip
    "$VENV/bin/python" -m pip install -q -e '.[test]'
    echo "$wanted" > "$STAMP"
fi
echo "setup: ready ($VENV/bin/e500-gdbstub, $(command -v gdb-multiarch))"
