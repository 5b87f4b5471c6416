"""What this nncore is: version, build, kernel levels and threads."""
from __future__ import annotations

import platform
import sys
from typing import Dict, Optional, TextIO

import numpy as np

from nncore import _core
from nncore._version import __version__


def config() -> Dict[str, object]:
    """The facts ``show_config`` prints, as a dict."""
    return {
        "version": __version__,
        "engine": _core.engine_version(),
        "compiler": _core.engine_compiler(),
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "machine": platform.machine(),
        "isa_available": _core.isa_available(),
        "isa": _core.get_isa(),
        "threads": _core.get_num_threads(),
    }


def show_config(file: Optional[TextIO] = None) -> None:
    """Print nncore's version, compiler, the kernel levels this CPU has, the
    level in use and the number of threads (NNCORE_ISA and NNCORE_NUM_THREADS
    change the last two)."""
    c = config()
    lines = [
        f"nncore {c['version']} (engine {c['engine']}, built with {c['compiler']})",
        f"python {c['python']}, numpy {c['numpy']}, machine {c['machine']}",
        f"kernel levels available: {', '.join(c['isa_available'])}",
        f"kernel level in use:     {c['isa']}",
        f"threads:                 {c['threads']}",
    ]
    print("\n".join(lines), file=file or sys.stdout)
