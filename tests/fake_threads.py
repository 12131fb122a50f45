"""A small target with several threads (gdbstub.api.Threads) and no emulator: each thread is a tiny
scripted state machine whose pc advances four bytes per instruction; one may hit a breakpoint after a
number of instructions, or power the guest off. It records what the session asked of it."""

from __future__ import annotations

import errno
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from gdbstub.api import SIGTRAP, StopEvent, StopReason, TargetError, ThreadAction
from gdbstub.registers import REGNUM_PC, RegisterDef, RegisterTable

COUNTER_BASE = 0x2000     # each thread stores its instruction count (a word) at COUNTER_BASE + 4 * (tid - 1)


@dataclass
class ScriptedThread:
    """One thread: its registers, and where its script stops it (``break_after`` instructions from
    the start: a software breakpoint; ``power_off_after``: the guest powers off with status 3)."""

    tid: int
    core: int
    values: dict[str, int] = field(default_factory=dict)
    executed: int = 0
    break_after: int | None = None
    power_off_after: int | None = None
    action: ThreadAction | None = None      # None: stopped


class FakeThreadsTarget:
    """``count`` threads with ids 1..count on cores 0..count-1; thread ``tid`` starts at pc
    ``0x1000 * tid``. :meth:`run_slice` runs the resumed threads in id order, each up to ``budget``
    instructions, and returns the first stop."""

    def __init__(self, count: int = 3, *, break_after: Mapping[int, int] | None = None,
                 power_off_after: Mapping[int, int] | None = None) -> None:
        self.registers = RegisterTable("e500v2")
        self.pc_key = self.registers.by_regnum[REGNUM_PC].key
        self.exited: int | None = None
        self.insn_limit_reached = False
        self.memory = bytearray(0x10000)
        self.threads = {tid: ScriptedThread(tid, tid - 1, {self.pc_key: 0x1000 * tid, "r1": 0x8000 + tid})
                        for tid in range(1, count + 1)}
        for tid, after in (break_after or {}).items():
            self.threads[tid].break_after = after
        for tid, after in (power_off_after or {}).items():
            self.threads[tid].power_off_after = after
        self.selected = 1
        self.breakpoints: set[int] = set()   # Z0 addresses (the script decides where threads stop)
        self.resumes: list[dict[int, ThreadAction]] = []
        self.stops: list[tuple[int, ...]] = []
        self.idle_slices = 0      # run_slice calls with no thread resumed (the session must not make them)
        self.legacy_resumes = 0   # prepare_resume calls (a Threads target is resumed through resume_threads)

    # -- Target ----------------------------------------------------------------------------------

    def _thread(self) -> ScriptedThread:
        return self.threads[self.selected]

    def read_register(self, reg: RegisterDef) -> int:
        return self._thread().values.get(reg.key, 0)

    def write_register(self, reg: RegisterDef, value: int) -> None:
        self._thread().values[reg.key] = value

    def read_g(self) -> bytes:
        values = self._thread().values
        return self.registers.encode_g([values.get(reg.key, 0) for reg in self.registers.g_registers])

    def register_reader(self, regs: Sequence[RegisterDef]) -> Callable[[], list[int]]:
        return lambda: [self._thread().values.get(reg.key, 0) for reg in regs]

    def register_by_regnum(self, regnum: int) -> RegisterDef:
        reg = self.registers.by_regnum.get(regnum)
        if reg is None:
            raise TargetError(errno.EFAULT, f"no register {regnum}")
        return reg

    def read_memory(self, address: int, length: int) -> bytes:
        if address + length > len(self.memory):
            raise TargetError(errno.EFAULT, "beyond memory")
        return bytes(self.memory[address:address + length])

    def read_ram(self, address: int, length: int) -> bytes | None:
        return self.read_memory(address, length) if address + length <= len(self.memory) else None

    def write_memory(self, address: int, data: bytes) -> None:
        if address + len(data) > len(self.memory):
            raise TargetError(errno.EFAULT, "beyond memory")
        self.memory[address:address + len(data)] = data

    def prepare_resume(self, *, step: bool) -> None:
        self.legacy_resumes += 1

    def run_slice(self, budget: int) -> StopEvent | None:
        running = [thread for _, thread in sorted(self.threads.items()) if thread.action is not None]
        if not running:
            self.idle_slices += 1
            return None
        for thread in running:
            for _ in range(budget):
                stop = self._execute(thread)
                if stop is not None:
                    thread.action = None
                    return stop
        return None

    def _execute(self, thread: ScriptedThread) -> StopEvent | None:
        """One instruction of ``thread``; the stop it ends with, if any."""
        assert thread.action is not None
        pc = thread.values[self.pc_key]
        if thread.break_after is not None and thread.executed == thread.break_after:
            return StopEvent(reason=StopReason.SWBREAK, thread=thread.tid)
        if thread.power_off_after is not None and thread.executed == thread.power_off_after:
            self.exited = 3
            for other in self.threads.values():
                other.action = None
            return StopEvent(exit_status=3)
        thread.executed += 1
        thread.values[self.pc_key] = pc + 4
        counter = COUNTER_BASE + 4 * (thread.tid - 1)
        self.memory[counter:counter + 4] = thread.executed.to_bytes(4, "big")
        action = thread.action
        if action.step_range is not None:
            start, end = action.step_range
            return None if start <= pc + 4 < end else StopEvent(signal=SIGTRAP, thread=thread.tid)
        if action.step:
            return StopEvent(signal=SIGTRAP, thread=thread.tid)
        return None

    def prepare_range_step(self, start: int, end: int) -> None:
        self.legacy_resumes += 1

    def add_sw_breakpoint(self, address: int, kind: int, conditions: Sequence[bytes] | None) -> None:
        self.breakpoints.add(address)

    def remove_sw_breakpoint(self, address: int, kind: int) -> None:
        self.breakpoints.discard(address)

    def remove_all_points(self) -> None:
        self.breakpoints.clear()

    def reset(self, *, keep_points: bool = False) -> None:
        self.exited = None
        for thread in self.threads.values():
            thread.action = None

    # -- Threads ---------------------------------------------------------------------------------

    def _check(self, tid: int) -> ScriptedThread:
        thread = self.threads.get(tid)
        if thread is None:
            raise TargetError(errno.ESRCH, f"no thread {tid}")
        return thread

    def thread_ids(self) -> Sequence[int]:
        return tuple(sorted(self.threads))

    def thread_name(self, tid: int) -> str:
        self._check(tid)
        return f"e500v2 <cpu{tid - 1}>"

    def thread_core(self, tid: int) -> int:
        return self._check(tid).core

    def select_thread(self, tid: int) -> None:
        self._check(tid)
        self.selected = tid

    def resume_threads(self, actions: Mapping[int, ThreadAction]) -> None:
        for tid in actions:
            self._check(tid)
        self.resumes.append(dict(actions))
        for tid, action in actions.items():
            self.threads[tid].action = action

    def stop_threads(self, tids: Iterable[int]) -> None:
        stopped = tuple(tids)
        for tid in stopped:
            self._check(tid).action = None
        self.stops.append(stopped)

    def running_threads(self) -> frozenset[int]:
        return frozenset(tid for tid, thread in self.threads.items() if thread.action is not None)
