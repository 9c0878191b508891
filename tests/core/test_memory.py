"""The C heap keeps large freed blocks for the next analytic (loudou.core.memory)."""

import platform
import subprocess
import sys
import textwrap

import pytest

from loudou.core.memory import keep_freed_memory

glibc = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")

# A child process allocates and frees a 64 MiB block three times (as an analytic's texts and
# arrays are), and prints the page faults of the last two allocations.
_CHILD = textwrap.dedent(
    """
    import resource, sys
    from loudou.core.memory import keep_freed_memory
    print(keep_freed_memory(int(sys.argv[1])))
    def faults():
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    block = bytearray(64 << 20)
    del block
    before = faults()
    for _ in range(2):
        block = bytearray(64 << 20)  # zero-filled: every page is touched
        del block
    print(faults() - before)
    """
)


def _faults(limit: int) -> tuple[str, int]:
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(limit)], capture_output=True, text=True, check=True
    )
    took, faults = done.stdout.split()
    return took, int(faults)


def test_zero_keeps_the_c_librarys_defaults() -> None:
    assert keep_freed_memory(0) is False


@glibc
def test_freed_blocks_are_reused_without_new_pages() -> None:
    # Default glibc: each 64 MiB block is mapped afresh, 16,384 pages of 4 KiB each time.
    took, faults = _faults(0)
    assert took == "False"
    assert faults >= 2 * 16_000
    # Kept: the second and third blocks reuse the first one's pages.
    took, faults = _faults(128 << 20)
    assert took == "True"
    assert faults < 1_000


@glibc
def test_limits_beyond_an_int_are_capped() -> None:
    took, _ = _faults(8 << 30)
    assert took == "True"
