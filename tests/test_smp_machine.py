"""The multi-core board: the spin table's release rule (QEMU's spin_kick), reservations across cores,
the turn order the target runs the cores in, and its determinism.

Imports: pytest, the standard library, the emulator package, gdbstub.target and tests/gdb_driver.py.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys

import gdb_driver
import pytest

from emulator.board import SMP_QUANTUM, Machine
from emulator.decoder import disassemble
from emulator.kvm import Vcpu
from emulator.spin_table import RELEASE_MAP_SIZE, SPIN_ENTRY_SIZE, SPIN_TABLE_PA
from emulator.sprs import SPR_PIR
from gdbstub.target import Target

LWARX_R3_0_R4 = 0x7C602028      # lwarx r3,0,r4
STWCX_R6_0_R4 = 0x7CC0212D      # stwcx. r6,0,r4
STW_R5_0_R4 = 0x90A40000        # stw r5,0(r4)
CR0_EQ = 0x20000000


def board(cores: int, cpu: str = "e500v2") -> tuple[Machine, list[Vcpu]]:
    machine = Machine(cpu, smp=cores)
    machine.load_elf(str(gdb_driver.guest_path("loop", cpu)))
    return machine, [Vcpu(machine, index=index) for index in range(cores)]


def test_the_encodings_used_here_are_what_they_say() -> None:
    assert disassemble(LWARX_R3_0_R4).split()[0] == "lwarx"
    assert disassemble(STWCX_R6_0_R4).split()[0] == "stwcx."
    assert disassemble(STW_R5_0_R4).split()[0] == "stw"


def test_secondary_cores_wait_halted_with_their_spin_table_entry_at_reset_values() -> None:
    machine, _ = board(4)
    assert machine.halted == [False, True, True, True]
    for index in range(4):
        entry = SPIN_TABLE_PA + SPIN_ENTRY_SIZE * index
        assert machine.bus.read(entry, 4) == 0 and machine.bus.read(entry + 4, 4) == 1     # addr = 1
        assert machine.bus.read(entry + 12, 4) == index                                    # r3
        assert machine.bus.read(entry + 20, 4) == index                                    # pir
        assert machine.cpus[index].sprs[SPR_PIR] == index


def test_a_write_that_clears_addr_bit0_releases_the_core_as_qemu_does() -> None:
    machine, vcpus = board(2)
    entry = SPIN_TABLE_PA + SPIN_ENTRY_SIZE
    machine.bus.write(entry + 8, 4, 0)
    machine.bus.write(entry + 12, 4, 0x1234)                 # r3
    machine.bus.write(entry + 4, 4, 0x0500_0101)             # low word of addr, bit 0 still set
    assert machine.halted[1]
    machine.bus.write(entry + 4, 4, 0x0500_0100)             # now clear: go
    assert not machine.halted[1]
    core = machine.cpus[1]
    assert core.pc == 0x0500_0100 & (RELEASE_MAP_SIZE - 1)
    assert core.gpr[3] == 0x1234 and core.gpr[7] == RELEASE_MAP_SIZE
    mapping = [line for line in vcpus[1].describe_tlb().splitlines() if line.startswith("TLB1[1]")]
    assert mapping and "EA 0x00000000 -> PA 0x004000000 size 64 MiB" in mapping[0], vcpus[1].describe_tlb()
    assert "WIMGE 0x04" in mapping[0]                         # M: coherent, as QEMU maps it
    # The boot core's entry is not a spin: writes to it change nothing.
    machine.bus.write(SPIN_TABLE_PA + 4, 4, 0)
    assert machine.bus.read(SPIN_TABLE_PA + 4, 4) == 1


def _release_at(machine: Machine, index: int, pc: int) -> None:
    entry = SPIN_TABLE_PA + SPIN_ENTRY_SIZE * index
    machine.bus.write(entry, 4, 0)
    machine.bus.write(entry + 4, 4, pc)


def test_a_store_by_another_core_to_the_granule_loses_the_reservation() -> None:
    machine, vcpus = board(2)
    code0, code1, data = 0x30000, 0x30100, 0x30200
    for address, word in ((code0, LWARX_R3_0_R4), (code0 + 4, STWCX_R6_0_R4), (code1, STW_R5_0_R4)):
        machine.bus.write(address, 4, word)
    _release_at(machine, 1, code1)
    for core in machine.cpus:
        core.gpr[4], core.gpr[5], core.gpr[6] = data + 8, 5, 6
    machine.cpu.pc = code0
    vcpus[0].run(1)                                   # lwarx: reserves the granule
    assert machine.cpu.reservation is not None
    vcpus[1].run(1)                                   # the other core stores into it
    vcpus[0].run(1)                                   # stwcx. fails
    assert not machine.cpu.cr & CR0_EQ
    assert machine.bus.read(data + 8, 4) == 5


def test_without_another_store_the_reservation_holds_across_turns() -> None:
    machine, vcpus = board(2)
    code0, data = 0x30000, 0x30200
    machine.bus.write(code0, 4, LWARX_R3_0_R4)
    machine.bus.write(code0 + 4, 4, STWCX_R6_0_R4)
    machine.cpu.gpr[4], machine.cpu.gpr[6] = data, 6
    machine.cpu.pc = code0
    vcpus[0].run(1)
    vcpus[1].run(1)                                   # halted: nothing happens
    vcpus[0].run(1)
    assert machine.cpu.cr & CR0_EQ
    assert machine.bus.read(data, 4) == 6


def _history(cores: int, cpu: str, slices: list[int], steps: int) -> list[tuple[int, int, int]]:
    """(core whose turn it is, its pc, its instruction count) after each slice of a run of the smp
    guest, slice sizes taken in turn from ``slices``."""
    machine = Machine(cpu, smp=cores, uart_out=lambda data: None)
    machine.load_elf(str(gdb_driver.guest_path("smp", cpu)))
    vcpus = [Vcpu(machine, index=index) for index in range(cores)]
    target = Target(vcpus, cpu)
    target.prepare_resume(step=False)
    seen = []
    for count in range(steps):
        stop = target.run_slice(slices[count % len(slices)])
        core = machine.cpus[target._turn]
        seen.append((target._turn, core.pc, core.instructions))
        if stop is not None:
            break
    return seen


def _final_state(cores: int, cpu: str, slice_size: int) -> str:
    machine = Machine(cpu, smp=cores, uart_out=lambda data: None)
    machine.load_elf(str(gdb_driver.guest_path("smp", cpu)))
    target = Target([Vcpu(machine, index=index) for index in range(cores)], cpu)
    target.prepare_resume(step=False)
    while True:
        stop = target.run_slice(slice_size)
        if stop is not None:
            break
    assert stop.exit_status == 0, stop
    digest = hashlib.sha256(machine.bus.ram[:0x200_0000])
    for core in machine.cpus:
        digest.update(repr((core.pc, core.instructions, core.cycles, list(core.gpr))).encode())
    return digest.hexdigest()


@pytest.mark.parametrize("cpu", gdb_driver.CPUS)
def test_the_same_smp_run_twice_is_the_same_instruction_by_instruction(cpu: str) -> None:
    first = _history(2, cpu, [1], 3 * SMP_QUANTUM + 500)
    second = _history(2, cpu, [1], 3 * SMP_QUANTUM + 500)
    assert first == second
    assert {core for core, _pc, _count in first} == {0, 1}      # both cores took turns in it


@pytest.mark.parametrize("cpu", gdb_driver.CPUS)
def test_an_smp_run_does_not_depend_on_the_slice_sizes(cpu: str) -> None:
    assert _final_state(4, cpu, 100_000) == _final_state(4, cpu, 777)


@pytest.mark.parametrize("value", ["9", "0", "cpus=x", "2,maxcpus=4", "sockets=2,cores=2,cpus=3", "what=2"])
def test_a_bad_smp_value_is_one_line_and_a_nonzero_exit(value: str) -> None:
    completed = subprocess.run([sys.executable, "-m", "gdbstub", "--run", "-smp", value,
                                str(gdb_driver.guest_path("hello", "e500v2"))], cwd=gdb_driver.REPO_ROOT,
                               capture_output=True, text=True, timeout=60, check=False)
    assert completed.returncode != 0
    assert len(completed.stderr.strip().splitlines()) == 1 and "-smp" in completed.stderr, completed.stderr


def test_the_cores_run_side_by_side_and_their_time_bases_never_run_backwards() -> None:
    """Each core's turn in a round starts at the round's time; the next round starts where the
    furthest core got; a waiting core waits to the end of the round at most; a time-base read on a
    core behind another reads what the other already read."""
    machine, vcpus = board(2)
    spin = 0x30100
    machine.bus.write(spin, 4, 0x48000000)                    # b . (core 1 spins)
    _release_at(machine, 1, spin)
    boot_core, second = machine.cpus
    start = machine.clock
    vcpus[0].run(SMP_QUANTUM)
    ahead = boot_core.timers.tb(boot_core.cycles)             # core 0 reads the time base
    vcpus[1].run(10)
    assert start <= second.cycles < boot_core.cycles
    assert second.timers.tb(second.cycles) == ahead           # not earlier than core 0's read
    vcpus[1].run(SMP_QUANTUM)
    vcpus[0].end_round()
    assert machine.clock == max(boot_core.cycles, second.cycles)
    second.waiting = True                                     # core 1 now waits for an interrupt
    vcpus[1].run(1)
    assert second.cycles == machine.clock + SMP_QUANTUM       # to the end of the round, not further
