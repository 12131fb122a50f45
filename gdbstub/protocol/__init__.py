"""gdb's remote serial protocol, sans-I/O: :mod:`~gdbstub.protocol.framing` turns bytes into packet
events and replies into bytes, :mod:`~gdbstub.protocol.commands` turns a packet's payload into a typed
command. No I/O, no trio, no emulator.

Imports: standard library and :mod:`gdbstub.api`.
"""
