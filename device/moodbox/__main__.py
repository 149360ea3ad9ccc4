"""``python -m moodbox`` and the ``moodbox`` console script.

Kept free of heavy imports on purpose: loading numpy, OpenCV and pydantic takes a second or more on a Pi,
and a Ctrl-C landing inside a native module's initialisation surfaces as a traceback or as a misleading
ImportError. Until the command line is loaded, Ctrl-C simply ends the process: nothing has started yet
that needs cleaning up."""

from __future__ import annotations

# The built-in _signal first: ``signal`` itself imports enum, functools and collections, and on Python 3.13
# a Ctrl-C landing in those imports showed their traceback before any handler could be installed.
import _signal
import os


def _interrupted_while_loading(signum: int, frame: object) -> None:
    os.write(2, b"interrupted\n")
    os._exit(130)  # EXIT_INTERRUPTED, as the commands end on Ctrl-C


def _guard() -> bool:
    """Ctrl-C ends the process quietly from now until the command line is loaded; False where a parent made
    us ignore SIGINT (then it stays ignored)."""
    if _signal.getsignal(_signal.SIGINT) is not _signal.default_int_handler:
        return _signal.getsignal(_signal.SIGINT) is _interrupted_while_loading
    _signal.signal(_signal.SIGINT, _interrupted_while_loading)
    return True


if __name__ == "__main__":  # python -m moodbox: from its first line
    _guard()

import signal  # noqa: E402  (after the guard)
import sys  # noqa: E402


def _library_command(argv: list[str]) -> bool:
    return "library" in argv[1:4]


def main() -> int:
    ours = _guard()
    # the slow native imports happen here, while a Ctrl-C still simply ends the process
    if _library_command(sys.argv):
        # the library scan: one thread (its few matrix products are not worth a BLAS thread pool next to
        # the music), and no OpenCV, which it does not use (40 MB less)
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ.setdefault(var, "1")
        import numpy  # noqa: F401
    else:
        import cv2  # noqa: F401  (numpy with it)

    try:
        import ai_edge_litert.interpreter  # noqa: F401
    except ImportError:
        pass  # tflite-runtime, or none: the model check says which
    from moodbox.cli import main as cli_main

    if ours:
        signal.signal(signal.SIGINT, signal.default_int_handler)  # cli.main installs its own from here
    return cli_main()


if __name__ == "__main__":
    raise SystemExit(main())
