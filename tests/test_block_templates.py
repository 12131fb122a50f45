"""Every block-translator template against its own instruction handler, one instruction at a time.

For each spec of the instruction table that has an ``emit`` template, and each core variant that
implements it, random words of that opcode (all operand, Rc and OE bits random) run once through the
decoded handler and once as the template's source on a twin core in the same random state: the next
pc, the GPRs, CR, XER, LR, CTR, the RAM any store can reach, and any interrupt raised must be the same. The
template's memory macros run as the core's own load/store methods here; the translator's inline fast
path for them is covered by tests/test_fast_engine.py.

Imports: the emulator package and tests/test_cpu_core.py helpers.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
from test_cpu_core import make_cpu

from emulator.cpu import Cpu
from emulator.decoder import all_specs, decode
from emulator.exceptions import Interrupt
from emulator.isa import XER_WRITABLE, InstructionSpec
from emulator.models import MSR_PR
from emulator.translate import Instruction, ends_block, template_for

M = 0xFFFFFFFF
PC = 0x00001000
DATA = 0x00200000        # inside make_cpu's 4 MiB of RAM, far from the code and the vectors
WORDS_PER_SPEC = 120
# Where a store can land: _value's addresses are small or near DATA, anything else is outside RAM.
RAM_COMPARED = ((0, 0x20000), (DATA - 0x10000, DATA + 0x10000))

SPECS_WITH_TEMPLATES = [(spec, model) for spec in all_specs() if spec.emit is not None
                        for model in sorted(spec.models)]


def _word(spec: InstructionSpec, rng: random.Random) -> int:
    word = (rng.randrange(1 << 26)) | (spec.primary << 26)
    if spec.xo is not None:
        field = ((1 << spec.xo_bits) - 1) << 1
        word = (word & ~field) | (spec.xo << 1)
    if spec.mnemonic in ("mfspr", "mtspr", "mftb"):   # mostly the SPRs a block has templates for
        choices = [268, 269] if spec.mnemonic == "mftb" else [1, 8, 9, 1, 8, 9, 256, 268, 269, 22]
        spr = rng.choice([*choices, rng.randrange(1024)])
        word = (word & ~(0x3FF << 11)) | ((spr & 31) << 16) | ((spr >> 5) << 11)
    return word


def _value(rng: random.Random) -> int:
    return rng.choice([0, 1, 2, 31, 32, M, 0x80000000, 0x7FFFFFFF, rng.randrange(1 << 32),
                       rng.randrange(1 << 8), -rng.randrange(1 << 8) & M, DATA + rng.randrange(-0x400, 0x400),
                       DATA + rng.randrange(-0x400, 0x400)])


def _randomise(cpus: tuple[Cpu, Cpu], rng: random.Random) -> None:
    gpr = [_value(rng) for _ in range(32)]
    cr, xer, lr, ctr = rng.randrange(1 << 32), rng.randrange(1 << 32) & XER_WRITABLE, _value(rng), _value(rng)
    problem_state = rng.randrange(4) == 0
    cycles = rng.choice([0, 1, rng.randrange(1 << 20), rng.randrange(1 << 45)])
    for cpu in cpus:
        cpu.gpr[:] = gpr
        cpu.cr, cpu.xer, cpu.lr, cpu.ctr = cr, xer, lr, ctr
        cpu.set_msr(MSR_PR if problem_state else 0)
        cpu.cycles = cycles                      # time-base reads depend on it


def _template_function(lines: list[str]) -> Any:
    macros = "LOAD8, LOAD16, LOAD32, STORE8, STORE16, STORE32, LOADWORDS, STOREWORDS, ZEROS"
    source = "\n".join([f"def run(cpu, gpr, {macros}):",
                        "    now = cpu.cycles",     # what the translator gives a clock-reading template
                        *("    " + line for line in lines), f"    return {PC + 4}"])
    namespace: dict[str, Any] = {}
    exec(compile(source, "<template>", "exec"), namespace)
    return namespace["run"]


def _outcome(function: Any, *arguments: Any) -> tuple[str, object]:
    try:
        return "next pc", function(*arguments) & M
    except Interrupt as interrupt:
        return "interrupt", sorted(vars(interrupt).items())


def _architectural(cpu: Cpu) -> dict[str, object]:
    return {"gpr": list(cpu.gpr), "cr": cpu.cr, "xer": cpu.xer, "lr": cpu.lr, "ctr": cpu.ctr}


@pytest.mark.parametrize(("spec", "model"), SPECS_WITH_TEMPLATES,
                         ids=[f"{spec.mnemonic}-{model}" for spec, model in SPECS_WITH_TEMPLATES])
def test_template_matches_handler(spec: InstructionSpec, model: str) -> None:
    rng = random.Random(f"{spec.mnemonic}/{model}")
    by_handler, by_template = make_cpu(model=model), make_cpu(model=model)
    data = rng.randbytes(0x8000)
    for cpu in (by_handler, by_template):
        cpu.bus.ram[DATA - 0x4000:DATA + 0x4000] = data
    templated = 0
    for _ in range(WORDS_PER_SPEC):
        word = _word(spec, rng)
        _decoded_spec, handler, cycles = decode(word, model)
        lines = template_for(Instruction(PC, word, handler, cycles), model)
        if lines is None:
            continue
        templated += 1
        _randomise((by_handler, by_template), rng)
        run = _template_function(lines)
        expected = _outcome(handler, by_handler, PC)
        got = _outcome(run, by_template, by_template.gpr, by_template.load8, by_template.load16,
                       by_template.load32, by_template.store8, by_template.store16, by_template.store32,
                       by_template.load_words, by_template.store_words, by_template.store_zeros)
        context = f"{spec.mnemonic} {word:#010x} on {model}:\n" + "\n".join(lines)
        returns = [index for index, line in enumerate(lines) if line.lstrip().startswith("return")]
        assert not returns or returns[-1] == len(lines) - 1, f"a return, yet not last (ends_block): {context}"
        assert ends_block(lines) == bool(returns), context
        assert got == expected, context
        assert _architectural(by_template) == _architectural(by_handler), context
        for start, end in RAM_COMPARED:
            assert by_template.bus.ram[start:end] == by_handler.bus.ram[start:end], context
    assert templated, f"no {spec.mnemonic} word had a template"
