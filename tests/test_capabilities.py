"""What the session offers gdb follows the capabilities of its target (gdbstub.api): a small target
with none of the optional ones, or only software breakpoints, against the e500 target with all."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from fakes import FakeVcpu

from gdbstub.api import Capabilities, StopEvent, StopReason
from gdbstub.registers import RegisterDef, RegisterTable
from gdbstub.session import Resume, Session
from gdbstub.target import Target

GDB_FEATURES = b"qSupported:multiprocess+;swbreak+;hwbreak+;vContSupported+;xmlRegisters=i386"


class BareTarget:
    """Registers, 64 KiB of memory and a guest that stops after every slice: no optional capability."""

    def __init__(self) -> None:
        self.registers = RegisterTable("e500v2")
        self.exited: int | None = None
        self.values: dict[str, int] = {}
        self.memory = bytearray(0x10000)
        self.resumes: list[bool] = []

    def read_register(self, reg: RegisterDef) -> int:
        return self.values.get(reg.key, 0)

    def write_register(self, reg: RegisterDef, value: int) -> None:
        self.values[reg.key] = value

    def read_g(self) -> bytes:
        return self.registers.encode_g([self.values.get(reg.key, 0) for reg in self.registers.g_registers])

    def register_reader(self, regs: Sequence[RegisterDef]) -> Callable[[], list[int]]:
        return lambda: [self.values.get(reg.key, 0) for reg in regs]

    def register_by_regnum(self, regnum: int) -> RegisterDef:
        return self.registers.by_regnum[regnum]

    def read_memory(self, address: int, length: int) -> bytes:
        return bytes(self.memory[address:address + length])

    def read_ram(self, address: int, length: int) -> bytes | None:
        return None

    def write_memory(self, address: int, data: bytes) -> None:
        self.memory[address:address + len(data)] = data

    def prepare_resume(self, *, step: bool) -> None:
        self.resumes.append(step)

    def run_slice(self, budget: int) -> StopEvent | None:
        return StopEvent(reason=StopReason.SWBREAK)

    def remove_all_points(self) -> None:
        pass

    def reset(self, *, keep_points: bool = False) -> None:
        self.values.clear()


class SoftwareBreakpointTarget(BareTarget):
    def __init__(self) -> None:
        super().__init__()
        self.points: dict[int, int] = {}

    def add_sw_breakpoint(self, address: int, kind: int, conditions: Sequence[bytes] | None) -> None:
        self.points[address] = kind

    def remove_sw_breakpoint(self, address: int, kind: int) -> None:
        del self.points[address]


def one(session: Session, packet: bytes) -> bytes:
    replies = session.handle(packet)
    assert len(replies) == 1 and isinstance(replies[0], bytes), replies
    return replies[0]


def features(session: Session) -> set[bytes]:
    return set(one(session, GDB_FEATURES).split(b";"))


def test_a_bare_target_is_offered_no_optional_packet_and_they_get_the_empty_reply() -> None:
    session = Session(BareTarget())
    offered = features(session)
    assert {b"qXfer:features:read+", b"vContSupported+", b"QStartNoAckMode+"} <= offered
    for absent in (b"swbreak+", b"hwbreak+", b"ConditionalBreakpoints+", b"qXfer:memory-map:read+",
                   b"qXfer:threads:read+", b"qXfer:exec-file:read+"):
        assert absent not in offered
    assert one(session, b"vCont?") == b"vCont;c;C;s;S;t"
    for packet in (b"Z0,1000,4", b"z0,1000,4", b"Z1,1000,4", b"z1,1000,4", b"Z2,1000,4", b"Z3,1000,4",
                   b"Z4,1000,4", b"z4,1000,4", b"qRcmd,68656c70", b"vFile:open:2f,0,0",
                   b"qXfer:memory-map:read::0,100", b"qXfer:threads:read::0,100",
                   b"qXfer:exec-file:read::0,100", b"qThreadExtraInfo,1", b"!", b"vRun;"):
        assert one(session, packet) == b"", packet
    # Malformed stays malformed, whatever the target can do.
    assert one(session, b"Z9,1000,4") == b"E22"
    # No range stepping: an r action is refused, the others resume.
    assert one(session, b"vCont;r1000,1010") == b"E22"
    [action] = session.handle(b"vCont;s")
    assert action == Resume(step=True)
    # A target without software breakpoints never has swbreak reported, even to a gdb that asked.
    stop = session.resume_blocking(action)
    assert stop.startswith(b"T05") and b"swbreak" not in stop
    assert session.target.resumes == [True]                     # type: ignore[attr-defined]


def test_software_breakpoints_alone_offer_swbreak_and_z0_only() -> None:
    target = SoftwareBreakpointTarget()
    session = Session(target)
    offered = features(session)
    assert {b"swbreak+", b"ConditionalBreakpoints+"} <= offered and b"hwbreak+" not in offered
    assert one(session, b"Z0,1000,4") == b"OK" and target.points == {0x1000: 4}
    assert one(session, b"Z1,1000,4") == b"" and one(session, b"Z2,2000,4") == b""
    [action] = session.handle(b"c")
    assert session.resume_blocking(action).endswith(b"swbreak:;")
    assert one(session, b"z0,1000,4") == b"OK" and target.points == {}


def test_the_e500_target_has_every_capability() -> None:
    capabilities = Capabilities.of(Target(FakeVcpu(), "e500v2"))
    assert all(getattr(capabilities, field) is not None for field in capabilities.__dataclass_fields__)
