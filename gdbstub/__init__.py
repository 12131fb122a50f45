"""GDB remote-serial-protocol stub for the emulated e500 guest.

Protocol modules here are sans-I/O (bytes in, events and reply values out); only
:mod:`gdbstub.server` owns sockets (trio). This package reaches the guest only through
:mod:`emulator.kvm`, :mod:`emulator.board` and :mod:`emulator.models`.
"""
