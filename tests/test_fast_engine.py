"""Equivalence of the block-translating engine (emulator/translate.py) with the per-instruction paths.

Every test runs two identical machines: one with ``cpu.block_translation`` on (the fast engine),
one as the reference (single steps via ``cpu.step()``, or the per-instruction decoded loop for long
runs), and compares the full machine state at budget boundaries and at every debug stop: GPRs, pc,
MSR, CR, LR, CTR, XER, all SPR storage, time base/DEC/TCR/TSR, TLB and MAS registers, guest debug
registers, reservation, cycles, instructions, RAM (byte-for-byte), device registers and UART output.
Guests: every example ELF and the whole lockstep corpus, random instruction streams (seeded), and
runs with soft breakpoints, host IAC/DAC watches and the decrementer active.
"""

from __future__ import annotations

import random
import zlib
from pathlib import Path
from typing import Any

import pytest

from emulator.board import Machine
from emulator.cpu import SPR_IVPR, StopKind
from emulator.debug import DataWatch, HostDebug
from emulator.exceptions import ESR_ST, IVOR_ALIGNMENT, Interrupt
from emulator.models import MSR_EE
from emulator.timers import SPR_DEC, SPR_DECAR, SPR_TBL_READ, SPR_TBU_READ, SPR_TCR, SPR_TSR

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples" / "bin").glob("*.elf"))
LOCKSTEP = sorted((ROOT / "tests" / "lockstep" / "bin").glob("*.elf"))
TRAP_WORD = 0x7FE00008   # tw 31,0,0: the soft-breakpoint instruction cpu.trap dispatches

STEP_BOUNDARIES = (1, 2, 3, 7, 40, 333, 1200)   # cumulative instructions compared against cpu.step()
LONG_CHUNK = 7919                              # odd budget so boundaries fall mid-block
LONG_LIMIT = 30_000


def _model_of(elf: Path) -> str:
    return "e500mc" if "e500mc" in elf.name else "e500v2"


def _machine(elf: Path, fast: bool) -> tuple[Machine, bytearray]:
    output = bytearray()
    machine = Machine(model_name=_model_of(elf), uart_out=output.extend)
    machine.load_elf(str(elf))
    machine.reset()
    machine.cpu.block_translation = fast
    return machine, output


def _plain_fields(obj: Any) -> dict[str, Any]:
    return {name: value for name, value in vars(obj).items()
            if isinstance(value, (int, bool, str, bytes)) or value is None}


def snapshot(machine: Machine, output: bytearray) -> dict[str, Any]:
    """Everything guest-visible (RAM is compared separately, byte for byte)."""
    cpu = machine.cpu
    mmu = machine.mmu
    devices = {name: _plain_fields(value) for name, value in vars(machine.bus).items()
               if hasattr(value, "__dict__") and not isinstance(value, (bytearray, bytes))}
    return {
        "gpr": list(cpu.gpr), "gpr_hi": list(cpu.gpr_hi), "acc": cpu.acc, "spefscr": cpu.spefscr,
        "pc": cpu.pc, "msr": cpu.msr, "cr": cpu.cr, "lr": cpu.lr, "ctr": cpu.ctr, "xer": cpu.xer,
        "sprs": dict(cpu.sprs), "reservation": cpu.reservation, "waiting": cpu.waiting,
        "instructions": cpu.instructions, "cycles": cpu.cycles,
        "timers": [cpu.read_spr(spr) for spr in (SPR_TBL_READ, SPR_TBU_READ, SPR_DEC, SPR_TCR, SPR_TSR)],
        "guest_debug": _plain_fields(cpu.guest_debug),
        "tlb": [(entry.mas1, entry.mas2, entry.mas3, entry.mas7) for entry in (*mmu.tlb0, *mmu.tlb1)],
        "mas": (mmu.mas0, mmu.mas1, mmu.mas2, mmu.mas3, mmu.mas4, mmu.mas6, mmu.mas7, tuple(mmu.pid)),
        "devices": devices, "uart": bytes(output),
    }


def assert_same(fast: tuple[Machine, bytearray], reference: tuple[Machine, bytearray], where: str) -> None:
    fast_state, reference_state = snapshot(*fast), snapshot(*reference)
    for key, value in reference_state.items():
        assert fast_state[key] == value, f"{where}: {key} differs"
    assert _ram_digest(fast[0]) == _ram_digest(reference[0]), f"{where}: RAM differs"


def _ram_digest(machine: Machine) -> tuple[int, int]:
    ram = machine.bus.ram
    return zlib.crc32(ram), zlib.adler32(ram)


def _step_to(machine: Machine, steps: int) -> None:
    for _ in range(steps):
        stop = machine.cpu.step()
        if stop.kind is not StopKind.BUDGET:
            return


@pytest.mark.parametrize("elf", EXAMPLES + LOCKSTEP, ids=lambda path: path.name)
def test_guest_matches_reference(elf: Path) -> None:
    fast, stepped = _machine(elf, True), _machine(elf, False)
    previous = 0
    for boundary in STEP_BOUNDARIES:
        fast_stop = fast[0].cpu.run(boundary - previous)
        _step_to(stepped[0], boundary - previous)
        previous = boundary
        assert_same(fast, stepped, f"after {boundary} instructions (vs single-step)")
        if fast_stop.kind is not StopKind.BUDGET:
            return
    # Longer: against the per-instruction run loop from the same point, at odd chunk boundaries.
    decoded = stepped
    while fast[0].cpu.instructions < LONG_LIMIT:
        fast_stop = fast[0].cpu.run(LONG_CHUNK)
        decoded_stop = decoded[0].cpu.run(LONG_CHUNK)
        assert fast_stop == decoded_stop
        assert_same(fast, decoded, f"at {fast[0].cpu.instructions} instructions")
        if fast_stop.kind is not StopKind.BUDGET:
            break


def _executed_pcs(elf: Path, count: int) -> list[int]:
    machine, _ = _machine(elf, False)
    pcs = []
    for _ in range(count):
        pcs.append(machine.cpu.pc)
        machine.cpu.step()
    return pcs


def _arm(machine: Machine, breakpoints: list[int], iac: list[int], dac: list[DataWatch]) -> None:
    cpu = machine.cpu
    for ea in breakpoints:
        pa = cpu.translate_debug(ea)
        assert pa is not None
        cpu.sw_dispatch[ea] = pa
        cpu.patch_instruction(pa, TRAP_WORD)
    cpu.set_host_debug(HostDebug(enabled=True, sw_breakpoints=True, iac=list(iac), dac=list(dac)))


def _disarm(machine: Machine, breakpoints: list[int]) -> None:
    cpu = machine.cpu
    for ea in breakpoints:
        cpu.sw_dispatch.pop(ea, None)
        pa = cpu.translate_debug(ea)
        assert pa is not None
        cpu.unpatch_instruction(pa)
    cpu.set_host_debug(HostDebug())


def _debug_session(machine: Machine, breakpoints: list[int], iac: list[int], dac: list[DataWatch],
                   stops: int) -> list[tuple[Any, int]]:
    """Run, and at each debug stop step over it with everything disarmed (as gdb does), re-arm."""
    events = []
    _arm(machine, breakpoints, iac, dac)
    for _ in range(stops):
        stop = machine.cpu.run(50_000)
        events.append((stop, machine.cpu.instructions))
        if stop.kind is not StopKind.HOST_DEBUG:
            break
        _disarm(machine, breakpoints)
        machine.cpu.step()
        _arm(machine, breakpoints, iac, dac)
    return events


@pytest.mark.parametrize("elf", [LOCKSTEP[0].parent / "timer-O2-e500v2.elf",
                                 LOCKSTEP[0].parent / "hash-O2-e500mc.elf",
                                 EXAMPLES[0].parent / "loop-e500v2.elf"], ids=lambda path: path.name)
def test_debug_stops_match(elf: Path) -> None:
    pcs = _executed_pcs(elf, 4000)
    distinct = sorted(set(pcs[500:]))
    breakpoints = distinct[::7][:12]
    iac = [distinct[len(distinct) // 2]]
    reference, _ = _machine(elf, False)
    reference.cpu.run(600)
    stack = reference.cpu.gpr[1]
    dac = [DataWatch(stack - 32, stack, read=False, write=True)]
    results = []
    for fast in (True, False):
        machine = _machine(elf, fast)
        events = _debug_session(machine[0], breakpoints, iac, dac, 40)
        results.append((events, machine))
    (fast_events, fast_machine), (reference_events, reference_machine) = results
    assert fast_events == reference_events
    assert any(stop.kind is StopKind.HOST_DEBUG for stop, _ in fast_events)
    assert_same(fast_machine, reference_machine, "after the debug session")


def test_host_single_step_is_one_instruction() -> None:
    elf = EXAMPLES[0].parent / "loop-e500v2.elf"
    machine, _ = _machine(elf, True)
    machine.cpu.run(1000)
    machine.cpu.set_host_debug(HostDebug(enabled=True, single_step=True))
    for _ in range(50):
        before = machine.cpu.instructions
        stop = machine.cpu.run(1000)
        assert stop.kind is StopKind.HOST_DEBUG
        assert machine.cpu.instructions - before <= 1


def test_decrementer_interrupts_at_the_same_instruction() -> None:
    """A short decrementer period on the compute guest: interrupts land mid-block in both engines."""
    elf = ROOT / "benchmarks" / "bin" / "compute-e500v2.elf"
    machines = [_machine(elf, fast) for fast in (True, False)]
    for machine, _ in machines:
        cpu = machine.cpu
        cpu.run(20_000)
        cpu.write_spr(SPR_DEC, 997)
        cpu.write_spr(SPR_TCR, 0x04400000)   # DIE | ARE: periodic decrementer interrupts
    for _ in range(6):
        stops = [machine.cpu.run(3331) for machine, _ in machines]
        assert stops[0] == stops[1]
        assert_same(machines[0], machines[1], "with the decrementer running")


# --------------------------------------------------------------------------- random instruction streams

def _random_word(rng: random.Random) -> int:
    """A word from the opcode families that have templates (plus some that do not)."""
    rd, ra, rb = rng.randrange(32), rng.choice([0, 3, 4, 5, 9, 10]), rng.randrange(32)
    immediate = rng.randrange(0x10000)
    data_base = rng.choice([3, 4])
    choice = rng.randrange(14)
    if choice == 0:
        primary = rng.choice([14, 15, 24, 25, 26, 27, 28, 29, 12, 13, 7, 8])
        return (primary << 26) | (rd << 21) | (ra << 16) | immediate
    if choice == 1:
        return (rng.choice([10, 11]) << 26) | (rng.randrange(8) << 23) | (ra << 16) | immediate
    if choice == 2:
        return (rng.choice([20, 21, 23]) << 26) | (rd << 21) | (ra << 16) | (rb << 11) | (
            rng.randrange(32) << 6) | (rng.randrange(32) << 1) | rng.randrange(2)
    if choice in (3, 4, 5):   # D-form loads/stores around the data page
        primary = rng.choice([32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45])
        return (primary << 26) | (rd << 21) | (data_base << 16) | rng.randrange(0, 0x200, 1)
    if choice == 6:   # X-form loads/stores
        xo = rng.choice([23, 55, 87, 119, 151, 183, 215, 247, 279, 311, 343, 375, 407, 439, 534, 662,
                         790, 918])
        return (31 << 26) | (rd << 21) | (data_base << 16) | (6 << 11) | (xo << 1)
    if choice == 7:   # XO-form arithmetic, with OE/Rc
        xo = rng.choice([266, 10, 138, 234, 202, 40, 8, 136, 232, 200, 104, 235, 11, 75, 459, 491])
        form_bits = (rng.randrange(2) << 10) | rng.randrange(2)   # OE and Rc
        return (31 << 26) | (rd << 21) | (ra << 16) | (rb << 11) | (xo << 1) | form_bits
    if choice == 8:   # X-form logical, shifts, compares, extends
        xo = rng.choice([28, 60, 284, 476, 124, 412, 316, 24, 536, 444, 0, 32, 792, 824, 922, 954, 26, 19])
        return (31 << 26) | (rd << 21) | (ra << 16) | (rb << 11) | (xo << 1) | rng.randrange(2)
    if choice == 9:   # short forward conditional branches, bdnz
        bo = rng.choice([4, 12, 16, 18, 20])
        displacement = 4 * rng.randrange(1, 4)
        return (16 << 26) | (bo << 21) | (rng.randrange(32) << 16) | displacement | rng.randrange(2)
    if choice == 10:
        return (18 << 26) | (4 * rng.randrange(1, 3)) | rng.randrange(2)
    if choice == 11:   # CR logical, mcrf, mtcrf, isel
        return rng.choice([(19 << 26) | (rd << 21) | (ra << 16) | (rb << 11)
                           | (rng.choice([257, 129, 289, 225, 33, 449, 417, 193]) << 1),
                           (19 << 26) | (rng.randrange(8) << 23) | (rng.randrange(8) << 18),
                           (31 << 26) | (rd << 21) | (0xFF << 12) | (144 << 1),
                           (31 << 26) | (rd << 21) | (ra << 16) | (rb << 11) | (rng.randrange(32) << 6)
                           | (15 << 1)])
    if choice == 12:   # SPR moves: LR, CTR, XER, SPRG0, DEC
        spr = rng.choice([8, 9, 1, 272, 22])
        encoded = ((spr & 31) << 16) | ((spr >> 5) << 11)
        return (31 << 26) | (rd << 21) | encoded | (rng.choice([339, 467]) << 1)
    return rng.randrange(1 << 32)   # anything at all: illegal forms, traps, system instructions


RANDOM_CODE = 0x00200000
HANDLER_PAGE = 0x00280000
INTERRUPT_COUNT = 0x7F00   # a word the decrementer handler increments (absolute d-form address)
# IVOR10 at +0x100: count the interrupt, clear TSR[DIS], rfi. Every other IVOR at +0x200: skip the
# faulting instruction (SRR0 += 4), rfi, so random words that fault do not end the loop.
HANDLERS = {0x100: (0x80007F00, 0x30000001, 0x90007F00, 0x3C000800, 0x7C1053A6, 0x4C000064),
            0x200: (0x7C1A02A6, 0x30000004, 0x7C1A03A6, 0x4C000064)}


def _install_handlers(machine: Machine) -> None:
    """IVPR/IVORs pointing at HANDLERS, so faulting random words are skipped and the stream goes on."""
    cpu = machine.cpu
    for offset, handler in HANDLERS.items():
        for index, word in enumerate(handler):
            address = HANDLER_PAGE + offset + 4 * index
            machine.bus.ram[address:address + 4] = word.to_bytes(4, "big")
    cpu.write_spr(SPR_IVPR, HANDLER_PAGE)
    for ivor in cpu.model.ivors:
        cpu.write_spr(cpu._ivor_spr(ivor), 0x100 if ivor == 10 else 0x200)


def _program_machines(words: list[int], registers: list[int]) -> list[tuple[Machine, bytearray]]:
    """A fast and a reference machine with ``words`` at RANDOM_CODE, ``registers`` loaded, the pc
    there, HANDLERS installed, and translation at first visit (straight-line code runs once)."""
    machines = []
    for fast in (True, False):
        machine, output = _machine(EXAMPLES[0].parent / "loop-e500v2.elf", fast)
        cpu = machine.cpu
        cpu.translate_after = 0
        for index, word in enumerate(words):
            machine.bus.ram[RANDOM_CODE + 4 * index:RANDOM_CODE + 4 * index + 4] = word.to_bytes(4, "big")
        cpu.gpr[:] = registers
        cpu.pc = RANDOM_CODE
        _install_handlers(machine)
        machines.append((machine, output))
    return machines


def _random_registers(rng: random.Random) -> list[int]:
    """Random GPRs, with r3/r4 on the data page the random loads and stores use."""
    registers = [rng.randrange(1 << 32) for _ in range(32)]
    registers[3], registers[4], registers[6] = 0x00300000, 0x00300FF0, rng.choice([0, 2, 0xFFE])
    return registers


@pytest.mark.parametrize("seed", range(24))
def test_random_streams_match_single_step(seed: int) -> None:
    rng = random.Random(seed)
    words = [_random_word(rng) for _ in range(600)]
    registers = _random_registers(rng)
    ctr = rng.randrange(5)
    machines = _program_machines(words, registers)
    for machine, _ in machines:
        machine.cpu.ctr = ctr
        if seed % 3 == 0:
            machine.cpu.write_spr(SPR_DEC, 50 + seed)
            machine.cpu.write_spr(SPR_TCR, 0x04400000)
    budgets = [1, 5, 17, 64, 300, 1000]
    for budget in budgets:
        machines[0][0].cpu.run(budget)
        _step_to(machines[1][0], budget)
        assert_same(machines[0], machines[1], f"seed {seed} after budget {budget}")


def _loop_nest(rng: random.Random) -> list[int]:
    """An outer loop on r20 (addic./bne) around an inner bdnz loop, random instructions in both: the
    shape a region compiles into one function with jumps between its superblocks."""
    def filler(count: int) -> list[int]:
        return [_random_word(rng) for _ in range(count)]
    li_r20 = (14 << 26) | (20 << 21) | rng.randrange(2, 9)
    li_r21 = (14 << 26) | (21 << 21) | rng.randrange(1, 7)
    mtctr_r21 = 0x7EA903A6
    head = filler(rng.randrange(1, 6))
    inner = filler(rng.randrange(1, 12))
    tail = filler(rng.randrange(0, 6))
    program = [li_r20, *head, li_r21, mtctr_r21, *inner]
    inner_start = 1 + len(head) + 2
    program.append(0x42000000 | ((4 * (inner_start - len(program))) & 0xFFFC))     # bdnz inner
    program += tail
    program.append((13 << 26) | (20 << 21) | (20 << 16) | 0xFFFF)                   # addic. r20,r20,-1
    program.append(0x40820000 | ((4 * (1 - len(program))) & 0xFFFC))               # bne head
    program.append(0x48000000)                                                      # b .
    return program


@pytest.mark.parametrize("seed", range(16))
def test_random_loop_nests_match_decoded_path(seed: int) -> None:
    """Against the per-instruction decoded loop (cpu.run without translation), not cpu.step(): a
    step whose instruction raises the decrementer interrupt returns before entering the vector,
    run() after, so at a budget boundary the two differ in pc alone."""
    rng = random.Random(1000 + seed)
    words = _loop_nest(rng)
    machines = _program_machines(words, _random_registers(rng))
    if seed % 2 == 0:
        for machine, _ in machines:
            # Taken decrementer interrupts (MSR[EE]=1), counted by their handler: one that lands an
            # instruction late or early inside the loop shows in the state.
            cpu = machine.cpu
            # A period above the translator's horizon (emulator.cpu), so regions run between events.
            cpu.write_spr(SPR_DECAR, 1500 + 37 * seed)
            cpu.write_spr(SPR_DEC, 1500 + 37 * seed)
            cpu.write_spr(SPR_TCR, 0x04400000)
            cpu.set_msr(cpu.msr | MSR_EE)
        for machine, _ in machines:
            machine.cpu.run(12000)
        ram = machines[0][0].bus.ram
        assert int.from_bytes(ram[INTERRUPT_COUNT:INTERRUPT_COUNT + 4], "big"), "no decrementer interrupt"
        assert_same(machines[0], machines[1], f"seed {seed} after 12000")
    for budget in (1, 9, 33, 150, 700, 2500, 6000):
        for machine, _ in machines:
            machine.cpu.run(budget)
        assert_same(machines[0], machines[1], f"seed {seed} after budget {budget}")


def test_self_modifying_code_is_seen() -> None:
    """A store over the next instruction of the running block takes effect, as when single-stepped."""
    elf = EXAMPLES[0].parent / "loop-e500v2.elf"
    code = 0x00200000
    # li r5,1 ; stw r6,12(r7) ; li r5,2 ; li r5,3 (overwritten by r6 = li r5,99) ; b .
    program = [0x38A00001, 0x90C7000C, 0x38A00002, 0x38A00003, 0x48000000]
    for fast in (True, False):
        machine, _ = _machine(elf, fast)
        cpu = machine.cpu
        for index, word in enumerate(program):
            machine.bus.ram[code + 4 * index:code + 4 * index + 4] = word.to_bytes(4, "big")
        cpu.pc = code
        cpu.gpr[6], cpu.gpr[7] = program[3], code   # first pass stores the word that is already there
        cpu.run(5)
        assert cpu.gpr[5] == 3
        cpu.pc = code
        cpu.gpr[6] = 0x38A00063                      # li r5,99 over the fourth instruction
        cpu.run(5)
        assert cpu.gpr[5] == 99, f"fast={fast}"


@pytest.mark.parametrize("scenario", ["dac", "tlb_miss", "decrementer", "budget"])
def test_self_loop_stops_mid_loop(scenario: str) -> None:
    """A block that branches to itself runs many passes per call; every stop inside it stays exact."""
    elf = EXAMPLES[0].parent / "loop-e500v2.elf"
    code = 0x00200000
    # loop: stw r5,0(r3) ; addi r3,r3,4 ; addi r5,r5,1 ; bdnz loop ; b .
    program = [0x90A30000, 0x38630004, 0x38A50001, 0x4200FFF4, 0x48000000]
    machines = []
    for fast in (True, False):
        machine, output = _machine(elf, fast)
        cpu = machine.cpu
        for index, word in enumerate(program):
            machine.bus.ram[code + 4 * index:code + 4 * index + 4] = word.to_bytes(4, "big")
        cpu.pc = code
        cpu.gpr[3] = 0x00300000 if scenario != "tlb_miss" else 0x03FFF000   # the boot mapping ends at 64 MiB
        cpu.ctr = 3000
        if scenario == "dac":
            cpu.set_host_debug(HostDebug(enabled=True, dac=[DataWatch(0x00301800, 0x00301804, False, True)]))
        if scenario == "decrementer":
            cpu.write_spr(SPR_DEC, 333)
            cpu.write_spr(SPR_TCR, 0x04400000)
        machines.append((machine, output))
    budgets = [10_000] if scenario != "budget" else [1, 4, 401, 999, 5000]
    for budget in budgets:
        stops = [machine.cpu.run(budget) for machine, _ in machines]
        assert stops[0] == stops[1]
        assert_same(machines[0], machines[1], f"{scenario}, budget {budget}")
    assert machines[0][0].cpu.instructions > 16


def _d_form(primary: int, register: int, base: int, displacement: int) -> int:
    return (primary << 26) | (register << 21) | (base << 16) | (displacement & 0xFFFF)


BULK_SOURCE = 0x00300000
BULK_TARGET = 0x00340000
# Loops the translator runs as slices (emulator.translate._bulk_loop): body, then bdnz back, then b .
# r6 is the store base, r4 the fill value or the load base; r7-r10 carry copied words.
BULK_LOOPS = {
    "fill_word": [_d_form(37, 4, 6, 4)],
    "fill_half": [_d_form(45, 4, 6, 2)],
    "fill_byte": [_d_form(39, 4, 6, 1)],
    "copy_1": [_d_form(33, 7, 4, 4), _d_form(37, 7, 6, 4)],
    "copy_2": [_d_form(32, 7, 4, 4), _d_form(33, 8, 4, 8), _d_form(36, 7, 6, 4), _d_form(37, 8, 6, 8)],
    "copy_4": [*(_d_form(32, 7 + i, 4, 4 + 4 * i) for i in range(3)), _d_form(33, 10, 4, 16),
               *(_d_form(36, 7 + i, 6, 4 + 4 * i) for i in range(3)), _d_form(37, 10, 6, 16)],
    "copy_back": [_d_form(33, 7, 4, -4), _d_form(37, 7, 6, -4)],
}
BULK_SCENARIOS = ["plain", "cross_pages", "unaligned", "overlap", "ctr_zero", "ctr_one", "dac", "tlb_miss",
                  "source_miss", "decrementer", "budget", "code_page"]


@pytest.mark.parametrize("scenario", BULK_SCENARIOS)
@pytest.mark.parametrize("kind", sorted(BULK_LOOPS))
def test_bulk_loops_match_decoded_path(kind: str, scenario: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Fill and copy loops (memset/memcpy) run as slices stay exactly the loops they are: memory,
    registers, CTR, counts and every stop (a page end, a watch, a TLB miss, an event, the budget,
    overlapping bytes, a code page) as on the per-instruction path."""
    import emulator.translate as translate
    bulk_regions = []
    original = translate._bulk_loop

    def recording(superblocks: Any) -> list[str]:
        lines = original(superblocks)
        bulk_regions.append(bool(lines))
        return lines
    monkeypatch.setattr(translate, "_bulk_loop", recording)
    monkeypatch.setattr(translate, "_compiled_blocks", {})   # generate here, not from memory or disk
    monkeypatch.setattr(translate, "shared_store", lambda: None)
    body = BULK_LOOPS[kind]
    # lwz r11,0(r12) first: a load that leaves a page in the read cache before the loop starts.
    program = [_d_form(32, 11, 12, 0), *body, 0x42000000 | ((-4 * len(body)) & 0xFFFC), 0x48000000]
    step = 1 if kind == "fill_byte" else 2 if kind == "fill_half" else 4
    backward = kind == "copy_back"
    source, target = BULK_SOURCE, BULK_TARGET
    if scenario == "cross_pages":
        source, target = BULK_SOURCE + 0xFF2, BULK_TARGET + 0x7F6
    elif scenario == "unaligned":
        # Backward: the first load at +0x3002, the second crosses from +0x2FFE into a watched page.
        source, target = BULK_SOURCE + 0x1006, BULK_TARGET + (0x1000 if kind.startswith("copy") else 0x1003)
    elif scenario == "source_miss":
        source = 0x03FFD000 + 2   # loads run off the boot mapping (64 MiB) after a few pages
    elif scenario == "overlap":
        target = source + (-8 if backward else 8)
    elif scenario == "tlb_miss":
        target = 0x03FFD000   # the boot mapping ends at 64 MiB, within the loop's reach
    elif scenario == "code_page":   # the page of the loop's own code, past its words
        target = 0x00200800 if not backward else 0x001FF000
    machines = []
    for fast in (True, False):
        machine, output = _machine(EXAMPLES[0].parent / "loop-e500v2.elf", fast)
        cpu = machine.cpu
        cpu.translate_after = 0
        _install_handlers(machine)
        ram = machine.bus.ram
        data = (source & ~0xFFF) - 0x4000
        ram[data:data + 0x10000] = random.Random(kind).randbytes(0x10000)
        for index, word in enumerate(program):
            ram[RANDOM_CODE + 4 * index:RANDOM_CODE + 4 * index + 4] = word.to_bytes(4, "big")
        cpu.pc = RANDOM_CODE
        cpu.gpr[12] = BULK_SOURCE + 0x2000
        if kind.startswith("fill"):
            cpu.gpr[4], cpu.gpr[6] = 0xA5C31E77, target - step
        elif backward:
            cpu.gpr[4], cpu.gpr[6] = source + 0x2000, target + 0x2000
        else:
            cpu.gpr[4], cpu.gpr[6] = source - 4, target - 4
        cpu.ctr = {"ctr_zero": 0, "ctr_one": 1}.get(scenario, 5000)
        if scenario == "dac":
            watch = DataWatch(target + 0x1234, target + 0x1238, False, True)
            cpu.set_host_debug(HostDebug(enabled=True, dac=[watch]))
        if scenario == "unaligned":
            watch = DataWatch(BULK_SOURCE + 0x3000, BULK_SOURCE + 0x3002, True, False)
            cpu.set_host_debug(HostDebug(enabled=True, dac=[watch]))
        if scenario == "decrementer":
            # Ticks every few thousand instructions: regions are built (the translator's horizon) and cut.
            cpu.write_spr(SPR_DECAR, 300_000)
            cpu.write_spr(SPR_DEC, 300_000)
            cpu.write_spr(SPR_TCR, 0x04400000)
            cpu.set_msr(cpu.msr | MSR_EE)
        machines.append((machine, output))
    budgets = [1, 4, 401, 999, 5000, 3333, 20000] if scenario in ("budget", "ctr_zero") else [30_000] * 2
    for budget in budgets:
        stops = [machine.cpu.run(budget) for machine, _ in machines]
        assert stops[0] == stops[1], f"{kind}, {scenario}, budget {budget}"
        assert_same(machines[0], machines[1], f"{kind}, {scenario}, budget {budget}")
    assert any(bulk_regions), "the loop was not recognised as a bulk loop"
    if scenario == "decrementer":
        ram = machines[0][0].bus.ram
        assert int.from_bytes(ram[INTERRUPT_COUNT:INTERRUPT_COUNT + 4], "big"), "no decrementer interrupt"


def _word_by_word(cpu: Any) -> None:
    """Give ``cpu`` the per-word lmw/stmw/dcbz memory access the slice paths must equal."""
    def load_words(ea: int, count: int) -> list[int]:
        if ea & 3:
            raise Interrupt(IVOR_ALIGNMENT, esr=0, dear=ea)
        return [cpu.load32((ea + 4 * index) & 0xFFFFFFFF) for index in range(count)]

    def store_words(ea: int, values: list[int]) -> None:
        if ea & 3:
            raise Interrupt(IVOR_ALIGNMENT, esr=ESR_ST, dear=ea)
        for index, value in enumerate(values):
            cpu.store32((ea + 4 * index) & 0xFFFFFFFF, value)

    def store_zeros(ea: int, size: int) -> None:
        for index in range(0, size, 4):
            cpu.store32((ea + index) & 0xFFFFFFFF, 0)
    cpu.load_words, cpu.store_words, cpu.store_zeros = load_words, store_words, store_zeros


# (name, words at RANDOM_CODE) with r3 the base; each runs twice so the second pass finds its pages cached.
MULTIPLE = {
    "stmw": [0xBF430008],     # stmw r26,8(r3)
    "lmw": [0xBB430008],      # lmw r26,8(r3)
    "dcbz": [0x7C001FEC],     # dcbz 0,r3
}


# Where r3 points for the MULTIPLE tests.
MULTIPLE_BASES = {"in_page": 0x00300100, "page_end": 0x00300FE0 - 8, "crossing": 0x00300FF0 - 8,
                  "unmapped": 0x03FFFFF0 - 8, "watched": 0x00300100, "code_page": RANDOM_CODE + 0x800,
                  "misaligned": 0x00300102}


def _multiple_machine(name: str, where: str, program: list[int], fast: bool) -> tuple[Machine, bytearray]:
    """A machine about to run ``program`` at RANDOM_CODE over random data, r3 at MULTIPLE_BASES[where]
    (with a data watch on base + 20 for "watched")."""
    machine, output = _machine(EXAMPLES[0].parent / "loop-e500v2.elf", fast)
    cpu = machine.cpu
    _install_handlers(machine)
    ram = machine.bus.ram
    ram[0x00300000:0x00302000] = random.Random(where).randbytes(0x2000)
    for index, word in enumerate(program):
        ram[RANDOM_CODE + 4 * index:RANDOM_CODE + 4 * index + 4] = word.to_bytes(4, "big")
    cpu.pc = RANDOM_CODE
    cpu.gpr[:] = _random_registers(random.Random(name))
    base = cpu.gpr[3] = MULTIPLE_BASES[where]
    if where == "watched":
        cpu.set_host_debug(HostDebug(enabled=True, dac=[DataWatch(base + 20, base + 24, True, True)]))
    return machine, output


@pytest.mark.parametrize("where", ["in_page", "page_end", "crossing", "unmapped", "watched", "code_page"])
@pytest.mark.parametrize("name", sorted(MULTIPLE))
def test_multiple_word_accesses_match_word_by_word(name: str, where: str) -> None:
    """lmw/stmw/dcbz as one slice (a cached page) equal the same instruction done word by word: memory,
    registers, faults (a DTLB miss part way), watches and code-page stores."""
    program = [*MULTIPLE[name], *MULTIPLE[name], 0x48000000]
    machines = [_multiple_machine(name, where, program, True) for _ in range(2)]
    _word_by_word(machines[1][0].cpu)
    for budget in (1, 1, 1, 50):
        stops = [machine.cpu.step() if budget == 1 else machine.cpu.run(budget) for machine, _ in machines]
        assert stops[0] == stops[1], f"{name} {where}"
        assert_same(machines[0], machines[1], f"{name} {where}, budget {budget}")


@pytest.mark.parametrize("where", sorted(MULTIPLE_BASES))
@pytest.mark.parametrize("name", sorted(MULTIPLE))
def test_translated_multiple_word_accesses_match_the_decoded_path(name: str, where: str) -> None:
    """lmw/stmw/dcbz inside translated blocks (between instructions that keep r28 and r31 in block
    locals) equal the decoded path: registers, memory, the stop (a DTLB miss, a watch hit, an
    alignment interrupt) and where it happens."""
    addi_r28, addi_r31 = 0x3B9C0001, 0x3BFF0001
    word = MULTIPLE[name][0]
    program = [addi_r28, addi_r31, word, addi_r28, addi_r31, word, addi_r28, 0x48000000]
    machines = [_multiple_machine(name, where, program, fast) for fast in (True, False)]
    translated = machines[0][0].cpu
    translated.translate_after = 0
    for budget in (60, 50):   # a block is only translated where a whole one fits the budget
        stops = [machine.cpu.run(budget) for machine, _ in machines]
        assert stops[0] == stops[1], f"{name} {where}"
        assert_same(machines[0], machines[1], f"{name} {where}, budget {budget}")
    assert any(block.start == RANDOM_CODE for block in translated._blocks.values()
               if block.run is not None), "the program was never translated"


def _mtspr(spr: int, register: int) -> int:
    return (31 << 26) | (register << 21) | ((spr & 31) << 16) | ((spr >> 5) << 11) | (467 << 1)


@pytest.mark.parametrize("switch", ["tlbwe", "pid"])
def test_remapped_code_page_runs_the_new_code(switch: str) -> None:
    """Code at an EA page runs, the guest remaps that page to other physical memory (a tlbwe, or a PID
    write selecting another entry), and calls it again: the new code runs, on the decoded path and
    translated, while the code of pages whose mapping did not change stays translated."""
    elf = EXAMPLES[0].parent / "loop-e500v2.elf"
    code, callee, old_page, new_page = 0x00200000, 0x40000000, 0x00210000, 0x00211000
    lis_r9, mtctr_r9, bctrl = 0x3D204000, 0x7D2903A6, 0x4E800421
    addic_r20, nop = (13 << 26) | (20 << 21) | (20 << 16) | 0xFFFF, 0x60000000
    if switch == "tlbwe":
        remap = [_mtspr(624, 10), _mtspr(625, 11), _mtspr(626, 12), _mtspr(627, 13), 0x7C0007A4]
    else:
        remap = [_mtspr(48, 14), nop, nop, nop, nop]
    # three calls, the remap, three more calls: 3 * 1 + 3 * 100 with the new code, 6 with stale code
    program = [lis_r9, mtctr_r9, bctrl, addic_r20, 0x4082FFF0,       # bne back to lis
               *remap, 0x4C00012C, 0x3A800003,                       # isync; li r20,3
               lis_r9, mtctr_r9, bctrl, addic_r20, 0x4082FFF0, 0x48000000]
    results = []
    for fast in (True, False):
        machine, _ = _machine(elf, fast)
        cpu = machine.cpu
        cpu.translate_after = 0
        ram = machine.bus.ram
        for index, word in enumerate(program):
            ram[code + 4 * index:code + 4 * index + 4] = word.to_bytes(4, "big")
        ram[old_page:old_page + 8] = bytes.fromhex("38a50001 4e800020")       # addi r5,r5,1 ; blr
        ram[new_page:new_page + 8] = bytes.fromhex("38a50064 4e800020")       # addi r5,r5,100 ; blr
        four_kib, all_permissions = 0x80000000 | (1 << 8), 0x3F
        old, new = old_page | all_permissions, new_page | all_permissions
        if switch == "tlbwe":
            machine.mmu.set_entry(1, 9, mas1=four_kib, mas2=callee, mas3=old)
        else:   # the same EA in two entries, told apart by their TID (MAS1[TID]) and PID0
            machine.mmu.set_entry(1, 9, mas1=four_kib | (1 << 16), mas2=callee, mas3=old)
            machine.mmu.set_entry(1, 10, mas1=four_kib | (2 << 16), mas2=callee, mas3=new)
            cpu.write_spr(48, 1)
        cpu.gpr[10:15] = [0x10090000, four_kib, callee, new, 2]
        cpu.gpr[20], cpu.gpr[5] = 3, 0
        cpu.pc = code
        cpu.run(len(program) * 8)
        assert cpu.pc == code + 4 * (len(program) - 1), f"fast={fast}: {cpu.pc:#x}"
        assert cpu.gpr[5] == 303, f"fast={fast}: r5={cpu.gpr[5]} (6: the old page's code ran after the remap)"
        if fast:
            # The first loop's region was not dropped by the remap of another page.
            assert code in cpu._blocks and cpu._blocks[code].run is not None
        results.append(snapshot(machine, bytearray()))
    assert results[0] == results[1]


def test_a_tlb_write_keeps_the_pages_it_does_not_touch() -> None:
    """A tlbwe drops the data page cache entries of the pages its old and new mapping cover, and keeps
    the others; a load through a remapped page reads the new physical page."""
    machine, _ = _machine(EXAMPLES[0].parent / "loop-e500v2.elf", True)
    cpu, mmu, ram = machine.cpu, machine.mmu, machine.bus.ram
    ram[0x00300000:0x00300004] = bytes.fromhex("11111111")
    ram[0x00301000:0x00301004] = bytes.fromhex("22222222")
    four_kib, all_permissions = 0x80000000 | (1 << 8), 0x3F

    def tlbwe(esel: int, ea: int, pa: int) -> None:   # as a guest writes an entry: MAS0-3, tlbwe
        mmu.mas0, mmu.mas1, mmu.mas2, mmu.mas3 = 0x10000000 | (esel << 16), four_kib, ea, pa | all_permissions
        mmu.tlbwe()
        cpu.translation_changed()
    tlbwe(9, 0x50000000, 0x00300000)
    assert cpu.load32(0x50000000) == 0x11111111
    assert cpu.load32(0x00200000) == int.from_bytes(ram[0x00200000:0x00200004], "big")
    assert {0x50000, 0x200} <= set(cpu._read_pages)
    tlbwe(10, 0x60000000, 0x00302000)                  # another page: both cache entries stay
    assert {0x50000, 0x200} <= set(cpu._read_pages)
    tlbwe(9, 0x50000000, 0x00301000)                  # the page itself: its entry goes
    assert 0x50000 not in cpu._read_pages and 0x200 in cpu._read_pages
    assert cpu.load32(0x50000000) == 0x22222222
