"""gdb's thread packets and non-stop mode in the session, sans-I/O, against a fake target with three
threads (tests/fake_threads.py): thread lists, Hg/Hc, per-thread vCont in all-stop (a step holds the
default continues), stop replies naming the thread, Ctrl-C, and non-stop's queue of stops."""

from __future__ import annotations

from fake_threads import COUNTER_BASE, FakeThreadsTarget
from test_capabilities import BareTarget, one

from gdbstub.api import ThreadAction
from gdbstub.session import Notification, Resume, Session

GDB_FEATURES = b"qSupported:multiprocess+;swbreak+;hwbreak+;vContSupported+;xmlRegisters=i386"


def make(count: int = 3, *, multiprocess: bool = True, **script: dict[int, int]
         ) -> tuple[Session, FakeThreadsTarget]:
    target = FakeThreadsTarget(count, **script)
    session = Session(target)
    session.handle(GDB_FEATURES if multiprocess else b"qSupported:swbreak+")
    return session, target


def resume_action(session: Session, packet: bytes) -> Resume:
    replies = session.handle(packet)
    assert len(replies) == 1 and isinstance(replies[0], Resume), replies
    return replies[0]


def run(session: Session, packet: bytes) -> bytes:
    return session.resume_blocking(resume_action(session, packet), budget=10, max_slices=100)


def pc_field(pc: int) -> bytes:
    return b"40:%08x;" % pc


def extra_info(session: Session, thread: bytes) -> str:
    return bytes.fromhex(one(session, b"qThreadExtraInfo," + thread).decode()).decode()


# -- what the session offers -------------------------------------------------------------------------

def test_non_stop_is_offered_only_with_threads() -> None:
    session, _ = make()
    assert b"QNonStop+" in one(session, GDB_FEATURES).split(b";")
    bare = Session(BareTarget())
    assert b"QNonStop+" not in one(bare, GDB_FEATURES).split(b";")
    # Without the capability the packets are unknown, as before, and one thread is listed.
    assert one(bare, b"QNonStop:1") == b"" and one(bare, b"vStopped") == b""
    assert one(bare, b"qfThreadInfo") == b"mp1.1" and one(bare, b"qThreadExtraInfo,p1.1") == b""
    assert one(bare, b"Hgp1.2") == b"E22"


# -- listing and naming threads ------------------------------------------------------------------------

def test_thread_list_current_thread_and_liveness() -> None:
    session, _ = make()
    assert one(session, b"qfThreadInfo") == b"mp1.1,p1.2,p1.3"
    assert one(session, b"qsThreadInfo") == b"l"
    assert one(session, b"qC") == b"QCp1.1"
    for tid in (b"1", b"2", b"3"):
        assert one(session, b"Tp1." + tid) == b"OK"
        assert one(session, b"T" + tid) == b"OK"
    assert one(session, b"Tp1.4") == b"E22" and one(session, b"Tp2.1") == b"E22"
    assert one(session, b"Tzz") == b"E22"
    plain, _ = make(multiprocess=False)
    assert one(plain, b"qfThreadInfo") == b"m1,2,3" and one(plain, b"qC") == b"QC1"


def test_each_thread_is_named_with_its_core() -> None:
    session, _ = make()
    assert extra_info(session, b"p1.1") == "e500v2 <cpu0> core 0 [halted]"
    assert extra_info(session, b"p1.3") == "e500v2 <cpu2> core 2 [halted]"
    assert one(session, b"qThreadExtraInfo,p1.4") == b"E22"
    assert one(session, b"qThreadExtraInfo,xyz") == b"E22"
    document = one(session, b"qXfer:threads:read::0,1000")
    assert document.startswith(b"l")
    for tid in (1, 2, 3):
        entry = b'<thread id="p1.%d" core="%d" name="e500v2 &lt;cpu%d&gt;"/>' % (tid, tid - 1, tid - 1)
        assert entry in document
    assert one(session, b"qXfer:threads:read:annex:0,1000") == b"E00"


# -- Hg: which thread's registers and memory ------------------------------------------------------------

def test_hg_selects_the_thread_for_registers() -> None:
    session, target = make()
    assert one(session, b"p40") == b"00001000"
    assert one(session, b"Hgp1.2") == b"OK" and target.selected == 2
    assert one(session, b"qC") == b"QCp1.2"
    assert one(session, b"p40") == b"00002000"
    assert one(session, b"g")[256 * 2:260 * 2] == b"00002000"
    assert one(session, b"P40=00002100") == b"OK"
    assert target.threads[2].values[target.pc_key] == 0x2100
    assert target.threads[1].values[target.pc_key] == 0x1000
    # 0 (any) and -1 (all) keep the current thread; unknown threads and processes are refused.
    assert one(session, b"Hg0") == b"OK" and one(session, b"Hg-1") == b"OK"
    assert one(session, b"qC") == b"QCp1.2"
    for unknown in (b"Hgp1.4", b"Hgp2.1", b"Hg", b"Hgq"):
        assert one(session, unknown) == b"E22", unknown
    assert one(session, b"qC") == b"QCp1.2"


# -- all-stop resumes ------------------------------------------------------------------------------------

def test_a_step_holds_the_default_continue_and_reports_the_stepped_thread() -> None:
    session, target = make()
    action = resume_action(session, b"vCont;s:p1.2;c")
    assert action.step and action.threads == {2: ThreadAction(step=True)}
    stop = session.resume_blocking(action, budget=10)
    assert stop.startswith(b"T05") and b"thread:p1.2;" in stop and pc_field(0x2004) in stop
    assert one(session, b"qC") == b"QCp1.2" and target.selected == 2      # the stopped thread is current
    assert target.threads[1].executed == 0 and target.threads[3].executed == 0
    assert target.stops[-1] == (1, 2, 3) and target.running_threads() == frozenset()
    assert target.legacy_resumes == 0


def test_a_continue_naming_a_thread_runs_beside_a_step() -> None:
    session, target = make()
    action = resume_action(session, b"vCont;s:p1.1;c:p1.3;c")
    assert action.threads == {1: ThreadAction(step=True), 3: ThreadAction()}
    assert session.resume_blocking(action, budget=5).startswith(b"T05")
    assert target.threads[3].executed == 0       # thread 1 stepped first, in this slice
    assert target.threads[2].action is None and target.threads[3].action is None


def test_the_leftmost_action_naming_a_thread_wins() -> None:
    session, _ = make()
    action = resume_action(session, b"vCont;c:p1.1;s;c:p1.2")
    assert action.threads == {1: ThreadAction(), 2: ThreadAction(step=True), 3: ThreadAction(step=True)}
    assert action.step                            # the current thread (1) continues; a stepper is named
    ranged = resume_action(session, b"vCont;r2000,2010:p1.2;c")
    assert ranged.threads == {2: ThreadAction(step=True, step_range=(0x2000, 0x2010))}
    assert ranged.step_range == (0x2000, 0x2010)


def test_continue_all_reports_the_thread_at_a_breakpoint_with_its_registers() -> None:
    session, target = make(break_after={3: 5})
    stop = run(session, b"vCont;c")
    assert stop.startswith(b"T05") and stop.endswith(b"thread:p1.3;swbreak:;")
    assert pc_field(0x3000 + 5 * 4) in stop and b"01:00008003;" in stop
    assert target.resumes[-1] == {1: ThreadAction(), 2: ThreadAction(), 3: ThreadAction()}
    assert one(session, b"qC") == b"QCp1.3"
    # `?` repeats that stop with that thread's registers, whichever thread gdb selected since.
    assert one(session, b"Hgp1.1") == b"OK"
    status = one(session, b"?")
    assert b"thread:p1.3;" in status and pc_field(0x3014) in status and one(session, b"qC") == b"QCp1.3"


def test_vcont_errors() -> None:
    session, target = make()
    for packet in (b"vCont;c:p1.9", b"vCont;c:p2.1", b"vCont;x", b"vCont;c:", b"vCont;s:zz", b"vCont;"):
        assert one(session, packet) == b"E22", packet
    assert target.resumes == []
    # t alone: every thread is stopped already (all-stop), answered with signal 0 at once.
    assert one(session, b"vCont;t").startswith(b"T00")


def test_hc_picks_the_thread_c_and_s_resume() -> None:
    session, target = make()
    assert one(session, b"Hcp1.2") == b"OK"
    assert resume_action(session, b"s").threads is None
    stop = run(session, b"s")
    assert b"thread:p1.2;" in stop and target.resumes[-1] == {2: ThreadAction(step=True)}
    run_action = session.handle(b"c")
    assert run_action == [Resume(step=False)]
    assert session.begin_resume(Resume(step=False)) is None
    assert target.resumes[-1] == {2: ThreadAction()}
    session.interrupt()
    assert one(session, b"Hc-1") == b"OK"
    assert session.begin_resume(Resume(step=False)) is None
    assert target.resumes[-1] == {1: ThreadAction(), 2: ThreadAction(), 3: ThreadAction()}
    session.interrupt()
    assert one(session, b"Hc0") == b"OK" and one(session, b"Hcp1.5") == b"E22"


def test_ctrl_c_reports_the_current_thread_or_the_first_running_one() -> None:
    session, target = make()
    assert one(session, b"Hgp1.2") == b"OK"
    assert session.begin_resume(resume_action(session, b"vCont;c")) is None
    assert session.run_slice(10) is None and session.running
    stop = session.interrupt()
    assert stop is not None and stop.startswith(b"T02") and b"thread:p1.2;" in stop
    assert target.running_threads() == frozenset() and not session.running
    assert session.begin_resume(resume_action(session, b"vCont;c:p1.3")) is None
    assert "[running]" in extra_info(session, b"p1.3")
    stop = session.interrupt()
    assert stop is not None and b"thread:p1.3;" in stop and one(session, b"qC") == b"QCp1.3"


def test_power_off_in_all_stop() -> None:
    session, target = make(power_off_after={2: 3})
    assert run(session, b"vCont;c") == b"W03;process:1"
    assert target.running_threads() == frozenset()
    assert one(session, b"vCont;c") == b"W03;process:1"


# -- non-stop ----------------------------------------------------------------------------------------------

def non_stop(count: int = 3, **script: dict[int, int]) -> tuple[Session, FakeThreadsTarget]:
    session, target = make(count, **script)
    assert one(session, b"QNonStop:1") == b"OK" and session.non_stop
    return session, target


def run_until_notification(session: Session, slices: int = 100) -> Notification:
    for _ in range(slices):
        session.run_non_stop_slice(10)
        notification = session.take_notification()
        if notification is not None:
            return notification
    raise AssertionError("no stop notification")


def test_non_stop_mode_packets() -> None:
    session, _ = make()
    assert one(session, b"QNonStop:2") == b"E22" and one(session, b"QNonStop:") == b"E22"
    assert one(session, b"QNonStop:1") == b"OK" and session.non_stop
    assert one(session, b"QNonStop:0") == b"OK" and not session.non_stop
    assert one(session, b"vStopped") == b"OK"       # nothing queued
    assert one(session, b"vStoppedX") == b""


def test_status_in_non_stop_reports_one_stop_and_notifies_the_others_after_it() -> None:
    session, _ = non_stop()
    assert one(session, b"Hgp1.2") == b"OK"
    first = one(session, b"?")                      # the current thread's stop first
    assert first.startswith(b"T00") and b"thread:p1.2;" in first and pc_field(0x2000) in first
    # The others come as a notification once that one is drained (gdb 13 cannot take several initial
    # stops through vStopped), then through vStopped as any stop.
    ok, notification = session.handle(b"vStopped")
    assert ok == b"OK" and isinstance(notification, Notification)
    assert notification.payload.startswith(b"Stop:T00") and b"thread:p1.1;" in notification.payload
    assert pc_field(0x1000) in notification.payload
    third = one(session, b"vStopped")
    assert b"thread:p1.3;" in third and pc_field(0x3000) in third
    assert one(session, b"vStopped") == b"OK"
    assert session.take_notification() is None
    assert session.handle(b"vCont;c:p1.2") == [b"OK"]
    first = one(session, b"?")                      # a running thread is not reported
    assert b"thread:p1.1;" in first
    assert b"thread:p1.3;" in session.handle(b"vStopped")[1].payload    # type: ignore[union-attr]
    assert one(session, b"vStopped") == b"OK"
    assert session.handle(b"vCont;c") == [b"OK"]
    assert one(session, b"?") == b"OK"              # every thread runs
    assert one(session, b"vStopped") == b"OK"


def test_non_stop_threads_run_while_gdb_reads_and_stops_are_queued() -> None:
    session, target = non_stop(break_after={2: 30})
    assert session.handle(b"vCont;c:p1.2;c:p1.3") == [b"OK"]
    assert session.running and target.running_threads() == frozenset({2, 3})
    assert session.take_notification() is None
    # Memory and registers are answered while the threads run, and memory reads are not stale.
    session.run_non_stop_slice(10)
    counter = b"m%x,4" % (COUNTER_BASE + 4 * 2)
    assert one(session, counter) == b"%08x" % 10
    session.run_non_stop_slice(10)
    assert one(session, counter) == b"%08x" % 20
    assert one(session, b"p40") == b"00001000"     # thread 1 is stopped and selected
    notification = run_until_notification(session)
    assert notification.payload.startswith(b"Stop:T05") and b"thread:p1.2;" in notification.payload
    assert notification.payload.endswith(b"swbreak:;") and pc_field(0x2000 + 30 * 4) in notification.payload
    assert target.selected == 1 and one(session, b"qC") == b"QCp1.1"    # gdb's selection is kept
    assert target.running_threads() == frozenset({3})
    assert "[halted]" in extra_info(session, b"p1.2") and "[running]" in extra_info(session, b"p1.3")
    # Thread 3 stops by vCont;t while the first stop is outstanding: queued, not announced.
    assert session.handle(b"vCont;t:p1.3") == [b"OK"]
    assert session.take_notification() is None
    queued = one(session, b"vStopped")
    assert queued.startswith(b"T00") and b"thread:p1.3;" in queued
    assert one(session, b"vStopped") == b"OK"
    assert not session.running
    # The next stop is announced afresh; t of a stopped thread reports nothing.
    assert session.handle(b"vCont;t:p1.3") == [b"OK"] and session.take_notification() is None
    assert session.handle(b"vCont;s:p1.1") == [b"OK"]
    stepped = run_until_notification(session)
    assert b"thread:p1.1;" in stepped.payload and pc_field(0x1004) in stepped.payload
    assert one(session, b"vStopped") == b"OK"


def test_non_stop_continue_resumes_only_stopped_threads_and_t_for_all_stops_them() -> None:
    session, target = non_stop()
    assert session.handle(b"vCont;c:p1.1") == [b"OK"]
    assert session.handle(b"vCont;c") == [b"OK"]
    assert target.resumes[-1] == {2: ThreadAction(), 3: ThreadAction()}
    replies = session.handle(b"vCont;t")
    assert replies[0] == b"OK" and isinstance(replies[1], Notification)
    assert replies[1].payload.startswith(b"Stop:T00") and b"thread:p1.1;" in replies[1].payload
    assert b"thread:p1.2;" in one(session, b"vStopped") and b"thread:p1.3;" in one(session, b"vStopped")
    assert one(session, b"vStopped") == b"OK" and target.running_threads() == frozenset()


def test_non_stop_idle_runs_nothing_and_ctrl_c_queues_sigint() -> None:
    session, target = non_stop()
    session.run_non_stop_slice(10)
    assert target.idle_slices == 0
    assert session.handle(b"c") == [b"OK"]       # c without vCont: every thread, answered at once
    assert session.interrupt() is None
    notification = session.take_notification()
    assert notification is not None and notification.payload.startswith(b"Stop:T02")
    assert not session.running


def test_non_stop_power_off_is_announced() -> None:
    session, target = non_stop(power_off_after={1: 4})
    assert session.handle(b"vCont;c") == [b"OK"]
    notification = run_until_notification(session)
    assert notification.payload == b"Stop:W03;process:1"
    assert target.running_threads() == frozenset() and not session.running
    assert one(session, b"vStopped") == b"OK"
    assert one(session, b"?") == b"W03;process:1"


def test_vcont_errors_in_non_stop_resume_nothing() -> None:
    session, target = non_stop()
    assert one(session, b"vCont;c:p1.7") == b"E22" and one(session, b"vCont;q") == b"E22"
    assert target.resumes == [] and not session.running


def test_back_to_all_stop_stops_the_running_threads() -> None:
    session, target = non_stop()
    assert session.handle(b"vCont;c:p1.2") == [b"OK"] and target.running_threads() == frozenset({2})
    assert one(session, b"QNonStop:0") == b"OK" and not session.non_stop
    assert target.running_threads() == frozenset() and not session.running
    assert one(session, b"vStopped") == b"OK"
    assert one(session, b"?").startswith(b"T05")


def test_a_target_failing_to_stop_its_threads_still_gets_the_stop_reported() -> None:
    session, target = make(break_after={1: 2})

    def broken(tids: object) -> None:
        raise RuntimeError("stop exploded")
    target.stop_threads = broken      # type: ignore[method-assign]
    stop = run(session, b"vCont;c:p1.1")
    assert stop.startswith(b"T05") and b"thread:p1.1;" in stop and not session.running
    assert one(session, b"QNonStop:1") == b"OK"
    assert session.handle(b"vCont;c:p1.2") == [b"OK"]
    assert session.handle(b"vCont;t:p1.2")[0] == b"OK" and not session.running
