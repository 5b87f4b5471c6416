"""threadpoolctl support: lets ``threadpool_info()`` list nncore's thread pool
and ``threadpool_limits()`` limit it, like the BLAS and OpenMP pools.

threadpoolctl is optional: :func:`register` does nothing without it (or with
a version older than 3.5, which lacks ``threadpoolctl.register``).

threadpoolctl finds pools by the shared libraries loaded in the process; the
engine lives in the extension module ``nncore/_core.*``, recognised by its
file name and by exporting ``nc_get_num_threads`` (so another package's
``_core`` module is never taken for it). Where the extension does not export
the engine's symbols (Windows DLLs export only ``PyInit__core``), nncore is
simply not listed.
"""
from __future__ import annotations


def _make_controller(LibController):
    import ctypes

    class NNCoreController(LibController):
        """threadpoolctl controller for nncore's engine threads."""

        user_api = "nncore"
        internal_api = "nncore"
        filename_prefixes = ("_core",)
        check_symbols = ("nc_get_num_threads", "nc_set_num_threads", "nc_version")

        def get_num_threads(self):
            get = getattr(self.dynlib, "nc_get_num_threads", None)
            return None if get is None else get()

        def set_num_threads(self, num_threads):
            set_ = getattr(self.dynlib, "nc_set_num_threads", None)
            if set_ is not None:
                # nc_set_num_threads rejects n < 1 (NC_ERR_ARG); threadpoolctl
                # only passes limits >= 1.
                set_(max(1, int(num_threads)))

        def get_version(self):
            version = getattr(self.dynlib, "nc_version", None)
            if version is None:
                return None
            version.restype = ctypes.c_char_p
            return version().decode("ascii")

    return NNCoreController


def register() -> bool:
    """Register nncore's controller with threadpoolctl if it is importable.

    Returns whether it was registered. Called once, at nncore's import.
    """
    try:
        import threadpoolctl
    except ImportError:
        return False
    if not hasattr(threadpoolctl, "register") or not hasattr(threadpoolctl, "LibController"):
        return False  # threadpoolctl < 3.5: no controller API
    controller = _make_controller(threadpoolctl.LibController)
    threadpoolctl.register(controller)
    return True
