#!/bin/sh
# Builds the lockstep corpus: every guest in src/ at -O0, -O2 and -Os for e500v2 (-mcpu=8548) and
# e500mc, into bin/<guest>-<opt>-<cpu>.elf. Start-up code, UART/power-off support and the linker
# script come from examples/src (read-only here). The built ELFs are committed, so the tests do not
# need the cross compiler. Usage: tests/lockstep/build.sh   (from anywhere)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
examples=$(cd "$here/../../examples/src" && pwd)
src="$here/src"
bin="$here/bin"
cc=${CROSS:-powerpc-linux-gnu-}gcc
mkdir -p "$bin"

common="-fno-pie -no-pie -ffreestanding -nostdlib -msoft-float -fno-asynchronous-unwind-tables
        -fno-omit-frame-pointer -Wall -Wextra -Werror -Wa,-mregnames -T $examples/e500.ld
        -Wl,--build-id=none -Wl,--no-warn-rwx-segments -Wa,--noexecstack -Wl,-z,noexecstack
        -Wl,-z,max-page-size=0x1000 -I$examples -I$src"

for guest in sort hash strings arith64 switch recursion setjmp timer mmu cache abi; do
    extra=""
    [ -f "$src/${guest}_asm.S" ] && extra="$src/${guest}_asm.S"
    for opt in O0 O2 Os; do
        for cpu in e500v2 e500mc; do
            case $cpu in
                e500v2) cpuflags="-mcpu=8548" ;;
                e500mc) cpuflags="-mcpu=e500mc -DE500MC" ;;
            esac
            out="$bin/$guest-$opt-$cpu.elf"
            # shellcheck disable=SC2086
            $cc $cpuflags -$opt $common -o "$out" "$examples/crt0.S" "$examples/support.c" \
                "$src/corpus_lib.c" "$src/$guest.c" $extra -lgcc
        done
    done
done
# Hard-float guests: the e500mc only (the e500v2 has no classic FPU, and Debian's libgcc float
# helpers are themselves hard-float, so -msoft-float cannot help there).
for guest in float; do
    for opt in O0 O2 Os; do
        out="$bin/$guest-$opt-e500mc.elf"
        # shellcheck disable=SC2086
        $cc -mcpu=e500mc -DE500MC -$opt $common -mhard-float -o "$out" "$examples/crt0.S" \
            "$examples/support.c" "$src/corpus_lib.c" "$src/$guest.c" "$src/${guest}_asm.S" -lgcc
    done
done
echo "built $(ls "$bin"/*.elf | wc -l) ELFs in $bin"
