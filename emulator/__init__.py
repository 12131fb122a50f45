"""A cycle-stepped PowerPC e500 (e500v2 / e500mc) core and the QEMU ``ppce500`` board around it.

This package is the guest side of the product. It may import only the standard library, ``construct``
and ``pyelftools``; it never imports ``gdbstub`` or ``trio`` and speaks no gdb vocabulary. Its public
door for debuggers is :mod:`emulator.kvm` (a KVM-shaped vCPU). See ``docs/architecture.md``.
"""
