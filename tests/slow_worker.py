"""Slowing one convolution worker down on purpose, to check that results do not depend on pace."""

import threading
import time

from kernels import _workers, conv, winograd


def slow_down_one_worker(monkeypatch, seconds=0.02):
    """From now on, every scratch-buffer request of one worker thread (the first worker to
    ask for one) comes `seconds` late, so that worker falls behind the others."""
    slow = []

    def late_scratch(purpose, shape, dtype):
        me = threading.get_ident()
        if not slow and threading.current_thread().name.startswith("conv"):
            slow.append(me)
        if slow and slow[0] == me:
            time.sleep(seconds)
        return _workers.scratch(purpose, shape, dtype)

    monkeypatch.setattr(conv, "scratch", late_scratch)
    monkeypatch.setattr(winograd, "scratch", late_scratch)
