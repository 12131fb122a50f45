"""Test helpers shared by the emulator tests (test doubles and assemblers); imported only by tests."""
