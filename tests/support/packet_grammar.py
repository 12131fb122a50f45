"""A seeded generator of gdb remote-protocol packets for fuzzing the stub: every packet kind the stub
parses, each field either a plausible value or an edge (0, 2^32-1, 2^32, 2^64, negative, empty,
overlong, bad hex, NUL, escape and run-length bytes), and wire encodings that are plain, run-length
encoded, badly checksummed or longer than PacketSize.

Each generated packet carries its category, which says what the fuzzer may assert about it:
``read`` packets never change registers or memory, whatever their arguments; ``write`` packets may
change them only when accepted (an ``OK`` reply); ``resume`` packets run the guest; ``control``
packets restart, kill, detach or switch modes. Imports: standard library only.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from gdbstub.protocol.framing import checksum, escape, run_length_encode

READ, WRITE, RESUME, CONTROL = "read", "write", "resume", "control"

_NUMBER_EDGES = [
    b"0", b"1", b"4", b"ffffffff", b"fffffffe", b"FFFFFFFF", b"100000000", b"10000000000000000",
    b"ffffffffffffffff", b"-1", b"-0", b"", b"g", b"0x10", b"0" * 40 + b"1", b"f" * 70, b"\x00", b"}",
    b"*", b" 1", b"1 ", b"+1", b"1_0", b"\xff", b"7fffffff", b"80000000",
    b"1" + b"0" * 3700,     # more decimal digits than Python converts by default
]
# Places the loop guest has something at: its text and data, the end of a 32 MiB RAM, the CCSR window.
_ADDRESSES = [0x100000, 0x100010, 0x1004B8, 0x100510, 0x0, 0x1FFFFFC, 0x2000000, 0xFE000000, 0xFE004500,
              0xFFFFFFFC, 0xFFFFF000]
_MONITOR_READS = [b"help", b"regs", b"spr", b"info tlb", b"info registers", b"debug", b"", b"nonsense",
                  b"info", b"\x00", b"regs extra"]
_XFER_OBJECTS = [b"features", b"memory-map", b"threads", b"exec-file", b"libraries", b"auxv", b""]
_XFER_ANNEXES = [b"target.xml", b"power-core.xml", b"", b"../../etc/passwd", b"target.xml\x00", b"x" * 300]


@dataclass(frozen=True, slots=True)
class Generated:
    payload: bytes
    category: str


class PacketGrammar:
    """Packets for one seed; :meth:`packet` draws the next one."""

    def __init__(self, seed: int, *, register_count: int, g_hex_digits: int) -> None:
        self.rng = random.Random(seed)
        self.register_count = register_count
        self.g_hex_digits = g_hex_digits
        kinds = [
            (self._stop_status, READ, 2), (self._read_g, READ, 3), (self._write_g, WRITE, 3),
            (self._read_p, READ, 6), (self._write_p, WRITE, 6), (self._read_m, READ, 10),
            (self._write_m, WRITE, 8), (self._write_x, WRITE, 6), (self._z_point, READ, 10),
            (self._thread, READ, 4), (self._query, READ, 14), (self._xfer, READ, 6), (self._v_file, READ, 6),
            (self._v_simple, READ, 3), (self._unknown, READ, 3), (self._resume, RESUME, 4),
            (self._control, CONTROL, 1),
        ]
        self._kinds = [(build, category) for build, category, _ in kinds]
        self._weights = [weight for _, _, weight in kinds]

    # -- fields ----------------------------------------------------------------------------------

    def number(self, plausible: int) -> bytes:
        """Half the time ``plausible`` in hex, else an edge or a random-width hex number."""
        rng = self.rng
        roll = rng.random()
        if roll < 0.5:
            return b"%x" % plausible
        if roll < 0.85:
            return rng.choice(_NUMBER_EDGES)
        return b"%x" % rng.getrandbits(rng.choice((8, 16, 31, 32, 33, 63, 64, 65, 128)))

    def address(self) -> bytes:
        return self.number(self.rng.choice(_ADDRESSES) + self.rng.randrange(16))

    def length(self) -> bytes:
        return self.number(self.rng.choice((0, 1, 2, 4, 8, 16, 0x100, 0x1000, 0x4000)))

    def hex_data(self, length: int) -> bytes:
        rng = self.rng
        data = rng.randbytes(length).hex().encode()
        roll = rng.random()
        if roll < 0.6:
            return data
        if roll < 0.75:
            return data[:-1]                            # odd digit count
        if roll < 0.85:
            return data + b"00"                         # one byte too many
        if roll < 0.95:
            return data.replace(b"0", b"g", 1) or b"zz"  # bad hex
        return data + b"\x00"

    def thread_id(self) -> bytes:
        return self.rng.choice([b"1", b"0", b"-1", b"p1.1", b"p1.-1", b"p-1.-1", b"p0.0", b"p2.1", b"2", b"",
                                b"p1", b"p.1", b"pffffffffffffffffff.1", b"-2", b"p1.1.1"])

    # -- packet kinds ------------------------------------------------------------------------------

    def _stop_status(self) -> bytes:
        return self.rng.choice([b"?", b"?", b"?x"])

    def _read_g(self) -> bytes:
        return self.rng.choice([b"g", b"g", b"gg", b"g0"])

    def _write_g(self) -> bytes:
        digits = self.g_hex_digits + self.rng.choice((0, 0, -2, 2, -self.g_hex_digits, 1))
        return b"G" + self.hex_data(max(0, digits) // 2)

    def _read_p(self) -> bytes:
        return b"p" + self.number(self.rng.randrange(self.register_count + 8))

    def _write_p(self) -> bytes:
        return (b"P" + self.number(self.rng.randrange(self.register_count + 8))
                + self.rng.choice([b"=", b"=", b"", b"=="])
                + self.hex_data(self.rng.choice((4, 8, 0, 3, 16))))

    def _read_m(self) -> bytes:
        return b"m" + self.address() + self.rng.choice([b",", b",", b";", b""]) + self.length()

    def _write_m(self) -> bytes:
        size = self.rng.choice((0, 1, 2, 4, 8, 64))
        return (b"M" + self.address() + b"," + self.number(size) + self.rng.choice([b":", b":", b""])
                + self.hex_data(size))

    def _write_x(self) -> bytes:
        size = self.rng.choice((0, 1, 4, 8))
        data = self.rng.randbytes(size + self.rng.choice((0, 0, 1, -1 if size else 0)))
        return b"X" + self.address() + b"," + self.number(size) + b":" + data

    def _z_point(self) -> bytes:
        rng = self.rng
        kind_plausible = 4 if rng.random() < 0.7 else rng.choice((1, 2, 8, 0x100))
        z_type = rng.choice([b"0", b"1", b"2", b"3", b"4", b"5", b"", b"00", b"-1"])
        packet = (rng.choice([b"Z", b"z"]) + z_type
                  + b"," + self.address() + b"," + self.number(kind_plausible))
        if rng.random() < 0.1:
            packet += rng.choice([b";X2,0a01", b";cmds:1,X1,00", b";X", b";", b";X1000,00"])
        return packet

    def _thread(self) -> bytes:
        rng = self.rng
        return rng.choice([b"Hg", b"Hc", b"H", b"Hx", b"T"]) + self.thread_id()

    def _query(self) -> bytes:
        rng = self.rng
        choice = rng.randrange(12)
        if choice == 0:
            features = rng.choice([b"multiprocess+;swbreak+;hwbreak+;qRelocInsn+;xmlRegisters=i386",
                                   b"", b";;;", b"swbreak-", b"PacketSize=ffffffffffffffffff"])
            return b"qSupported" + rng.choice([b":", b""]) + features
        if choice == 1:
            return rng.choice([b"qC", b"qfThreadInfo", b"qsThreadInfo", b"qOffsets", b"qTStatus",
                               b"qSymbol::", b"qAttached", b"qAttached:1", b"qAttached:zz", b"q", b"qTfV",
                               b"qGetTLSAddr:1,0,0"])
        if choice == 2:
            return b"qThreadExtraInfo," + self.thread_id()
        if choice in (3, 4):
            command = rng.choice(_MONITOR_READS)
            hex_command = command.hex().encode()
            if rng.random() < 0.2:
                hex_command = rng.choice([hex_command[:-1], hex_command + b"g", b"", b"zz"])
            return b"qRcmd," + hex_command
        if choice in (5, 6):
            return b"qCRC:" + self.address() + rng.choice([b",", b""]) + self.length()
        if choice in (7, 8):
            pattern = self.hex_data(rng.choice((0, 1, 4, 8)))
            return b"qSearch:memory:" + self.address() + b";" + self.length() + b";" + pattern
        if choice == 9:
            return b"Q" + rng.choice([b"NonStop:1", b"PassSignals:", b"ProgramSignals:0e",
                                      b"DisableRandomization:1",
                                      b"ThreadEvents:1", b"Agent:1", b"StartNoAckMod", b""])
        if choice == 10:
            return b"qL1200000000000000000"
        return b"q" + rng.randbytes(rng.randrange(1, 12))

    def _xfer(self) -> bytes:
        rng = self.rng
        return (b"qXfer:" + rng.choice(_XFER_OBJECTS) + b":" + rng.choice([b"read", b"read", b"write", b""])
                + b":" + rng.choice(_XFER_ANNEXES) + b":" + self.number(rng.choice((0, 0x10, 0x100)))
                + rng.choice([b",", b",", b""]) + self.number(rng.choice((0xFFB, 0x10, 0))))

    def _v_file(self) -> bytes:
        rng = self.rng
        choice = rng.randrange(5)
        if choice == 0:
            name = rng.choice([b"", b"/", b"/proc/self/environ", b"loop-e500v2.elf", b"a\x00b", b"\xff\xfe",
                               b"x" * 5000])
            hex_name = name.hex().encode()
            if rng.random() < 0.2:
                hex_name = rng.choice([hex_name[:-1], b"zz", hex_name + b"g"])
            return (b"vFile:open:" + hex_name + b"," + self.number(rng.choice((0, 1, 2, 0x200)))
                    + b"," + self.number(0o644))
        if choice == 1:
            return (b"vFile:pread:" + self.number(rng.randrange(20)) + b"," + self.length() + b","
                    + self.number(rng.choice((0, 0x10, 1 << 20))))
        if choice == 2:
            return rng.choice([b"vFile:close:", b"vFile:fstat:"]) + self.number(rng.randrange(20))
        if choice == 3:
            return b"vFile:setfs:" + self.number(0)
        return b"vFile:" + rng.choice([b"unlink:2f", b"readlink:2f", b"pwrite:0,0,00", b"", b"open",
                                       b"pread:"])

    def _v_simple(self) -> bytes:
        return self.rng.choice([b"vCont?", b"vMustReplyEmpty", b"vCtrlC", b"vStopped", b"vCont", b"vFoo;bar"])

    def _unknown(self) -> bytes:
        rng = self.rng
        first = rng.choice(b"abdefhijlnoruwxyABEFIJKLNOUVWY#$}*\x00\x03\xff+-")
        return bytes([first]) + rng.randbytes(rng.randrange(10))

    def _resume(self) -> bytes:
        rng = self.rng
        choice = rng.randrange(7)
        if choice == 0:
            return b"s"
        if choice == 1:
            return b"s" + self.address()
        if choice == 2:
            return b"c" + (self.address() if rng.random() < 0.5 else b"")
        if choice == 3:
            return rng.choice([b"C", b"S"]) + self.number(rng.choice((0, 5, 2, 0x13, 0xFF))) + (
                b";" + self.address() if rng.random() < 0.3 else b"")
        if choice == 4:
            return b"vCont;s" + rng.choice([b"", b":1", b":p1.1", b":-1", b":p1.-1", b":2"])
        if choice == 5:
            return b"vCont;r" + self.address() + b"," + self.address() + rng.choice([b":1", b""]) + b";c"
        return b"vCont;" + rng.choice([b"c", b"C05", b"S05:1", b"t", b"x", b"", b"s:2;c", b"c:p1.1;s", b"C"])

    def _control(self) -> bytes:
        return self.rng.choice([b"!", b"R00", b"R", b"D", b"D;1", b"D;zz", b"D;2", b"k", b"vKill;1", b"vKill",
                                b"vRun;", b"vRun;" + b"nonexistent".hex().encode(), b"vRun;zz", b"vAttach;1",
                                b"vAttach;2", b"vAttach;", b"QStartNoAckMode", b"monitor-reset"])

    # -- drawing ---------------------------------------------------------------------------------

    def packet(self) -> Generated:
        build, category = self.rng.choices(self._kinds, self._weights)[0]
        payload = build()
        if payload == b"monitor-reset":
            payload = b"qRcmd," + b"reset".hex().encode()
        return Generated(payload, category)

    def wire(self, payload: bytes, max_packet: int) -> tuple[bytes, str]:
        """Encode ``payload`` for the wire, sometimes badly: returns (bytes, how) where ``how`` is
        ``plain``, ``rle`` (run-length encoded: the same packet), ``bad-checksum`` or ``oversize``."""
        rng = self.rng
        roll = rng.random()
        body = escape(payload)
        if len(body) > max_packet:
            return b"$" + body + b"#%02x" % checksum(body), "oversize"
        if roll < 0.04:
            return b"$" + body + b"#%02x" % ((checksum(body) + 1) & 0xFF), "bad-checksum"
        if roll < 0.05:
            return b"$" + body + b"#zz", "bad-checksum"
        if roll < 0.06:
            body = body + b"0" * (max_packet + rng.randrange(1, 5000))
            return b"$" + body + b"#%02x" % checksum(body), "oversize"
        how = "plain"
        if roll < 0.15:
            encoded = _run_length_encode_any(run_length_encode(body))
            if encoded != body:
                body, how = encoded, "rle"
        return b"$" + body + b"#%02x" % checksum(body), how


def _run_length_encode_any(body: bytes) -> bytes:
    """gdb's ``X*n`` encoding applied to every run of 4-97 equal bytes (the stub's own encoder only
    compresses long runs of '0'); counts that would read as '#' or '$' are avoided."""
    out = bytearray()
    index = 0
    while index < len(body):
        byte = body[index]
        run = 1
        while index + run < len(body) and body[index + run] == byte and run < 98:
            run += 1
        previous_is_escape = index > 0 and body[index - 1] == 0x7D   # escaped bodies never hold '}}'
        if run >= 4 and byte not in b"$#}*" and not previous_is_escape and (run - 1 + 29) not in (0x23, 0x24):
            out += bytes((byte, 0x2A, run - 1 + 29))
        else:
            out += body[index:index + run]
        index += run
    return bytes(out)
