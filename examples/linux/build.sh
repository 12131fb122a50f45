#!/usr/bin/env bash
# Builds the test kernels for QEMU's ppce500 machine from Debian 12's linux-source-6.1:
#   examples/bin/linux-e500v2.elf       (-cpu e500v2, math emulation for the classic-FPU /init)
#   examples/bin/linux-e500mc.elf       (-cpu e500mc)
#   examples/bin/linux-smp-e500v2.elf   (the same with smp.config: -smp 1..8)
#   examples/bin/linux-smp-e500mc.elf
# tinyconfig + common.config + <cpu>.config (+ smp.config), a built-in initramfs holding a static /init
# (init.c; the SMP kernels' /init also reports the CPUs it sees).
#
# Usage: bash examples/linux/build.sh [e500v2|e500mc|smp-e500v2|smp-e500mc ...]     (default: all four)
# Environment: LINUX_BUILD_DIR (scratch folder, default /tmp/e500-linux-build; never inside the
# repository), JOBS (default: the number of CPUs).
# On Debian 12 as root it installs the packages it needs first.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
build="${LINUX_BUILD_DIR:-/tmp/e500-linux-build}"
jobs="${JOBS:-$(nproc)}"
cross=powerpc-linux-gnu-
variants=("$@")
[ ${#variants[@]} -gt 0 ] || variants=(e500v2 e500mc smp-e500v2 smp-e500mc)

case "$build/" in
    "$repo"/*) echo "build.sh: LINUX_BUILD_DIR must be outside the repository ($repo)" >&2; exit 1 ;;
esac

# Host gcc + libc6-dev build the kernel's host tools (fixdep, dtc, gen_init_cpio, kconfig). The tiny
# configuration signs nothing, so neither libssl-dev nor libelf-dev is needed.
packages=(linux-source-6.1 gcc-powerpc-linux-gnu libc6-dev-powerpc-cross gcc libc6-dev make bc flex bison
          xz-utils)
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "build.sh: missing Debian packages: ${missing[*]} (run as root to install them)" >&2
        exit 1
    fi
    echo "build.sh: installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

mkdir -p "$build"
src="$build/linux-source-6.1"
if [ ! -f "$src/Makefile" ]; then
    echo "build.sh: unpacking /usr/src/linux-source-6.1.tar.xz into $build"
    tar -C "$build" -xf /usr/src/linux-source-6.1.tar.xz
fi

# A fixed banner ("Linux version ... (e500-gdbstub@build) ... #1 ...") so that a rebuild from the
# same sources prints the same first console line.
export KBUILD_BUILD_USER=e500-gdbstub KBUILD_BUILD_HOST=build KBUILD_BUILD_VERSION=1
export KBUILD_BUILD_TIMESTAMP="Thu Jan  1 00:00:00 UTC 2026"

for variant in "${variants[@]}"; do
    cpu="${variant#smp-}"
    case "$cpu" in
        e500v2) init_cflags=() ;;              # Debian's default: classic FPU (math-emulated)
        e500mc) init_cflags=(-mcpu=e500mc) ;;
        *) echo "build.sh: unknown kernel '$variant' (e500v2, e500mc, smp-e500v2 or smp-e500mc)" >&2; exit 1 ;;
    esac
    fragments=("$here/common.config" "$here/$cpu.config")
    if [ "$variant" != "$cpu" ]; then
        fragments+=("$here/smp.config")
        init_cflags+=(-DINIT_REPORTS_CPUS)
    fi
    out="$build/$variant"
    mkdir -p "$out"
    start=$(date +%s)

    "${cross}gcc" -static -O2 -Wall -Wextra -Werror "${init_cflags[@]}" -o "$out/initramfs-init" "$here/init.c"
    "${cross}strip" "$out/initramfs-init"
    # gen_init_cpio stores a regular file's own mtime: pin it so the initramfs (and the ELF) only
    # changes when /init does.
    touch -d "$KBUILD_BUILD_TIMESTAMP" "$out/initramfs-init"
    export LINUX_INIT="$out/initramfs-init"     # expanded by gen_init_cpio in initramfs.list

    printf 'CONFIG_INITRAMFS_SOURCE="%s"\n' "$here/initramfs.list" > "$out/initramfs.config"
    # Source paths in the DWARF are relative to the build folder (linux-source-6.1/init/main.c), so
    # they do not depend on where it was built; gdb's `directory` points them at an unpacked tree.
    kmake=(make -C "$src" O="$out" ARCH=powerpc CROSS_COMPILE="$cross" KCFLAGS="-fdebug-prefix-map=$build/="
           KAFLAGS="-fdebug-prefix-map=$build/=")
    "${kmake[@]}" -s tinyconfig
    (cd "$out" && ARCH=powerpc CROSS_COMPILE="$cross" "$src/scripts/kconfig/merge_config.sh" -m -O "$out" \
        "$out/.config" "${fragments[@]}" "$out/initramfs.config" >/dev/null)
    "${kmake[@]}" -s olddefconfig
    # merge_config only warns when Kconfig drops a requested option: fail instead.
    dropped=0
    while IFS= read -r line; do
        case "$line" in
            CONFIG_*=*) grep -qxF -- "$line" "$out/.config" || { echo "build.sh: $variant: not set: $line" >&2; dropped=1; } ;;
            "# CONFIG_"*" is not set") name="${line#\# }"; name="${name%% *}"
                ! grep -q "^$name=" "$out/.config" || { echo "build.sh: $variant: still set: $name" >&2; dropped=1; } ;;
        esac
    done < <(cat "${fragments[@]}" "$out/initramfs.config")
    [ "$dropped" -eq 0 ] || exit 1

    # Kbuild rebuilds the initramfs only when a file in it is newer than the archive, and /init's mtime
    # is pinned: drop the archive so that a changed /init always gets in (regenerating it is cheap, and
    # an unchanged /init gives the same bytes).
    rm -f "$out/usr/initramfs_data.cpio"
    "${kmake[@]}" -j"$jobs" vmlinux
    # The DWARF (reduced: types, variables, lines, frames) stays for gdb, compressed: gdb reads
    # compressed sections, and the ELF shrinks from ~12 to ~7 MB.
    "${cross}objcopy" --compress-debug-sections=zlib "$out/vmlinux" "$repo/examples/bin/linux-$variant.elf"
    echo "build.sh: $variant: examples/bin/linux-$variant.elf ($(du -h "$repo/examples/bin/linux-$variant.elf" | cut -f1)," \
         "$(( $(date +%s) - start )) s)"
done
