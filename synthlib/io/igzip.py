"""ISA-L's stateless deflate, called with buffers this module owns.

The functions come from the ISA-L that python-isal links into ``isal_zlib`` (exported C
symbols; the structure head below is ``struct isal_zstream`` of ``igzip_lib.h``, unchanged
since ISA-L 2.25). The stateless API resets its match history on every call, so a block's
bytes follow from its data, the level and the ISA-L version. Level 0 uses ISA-L's fixed
Huffman tables; the levels that build a table per block (1-3) were measured giving other bytes
for the same block in some processes (see synthlib.io.bgzf), and get a level buffer that is
cleared on every call.

:func:`available` says whether this works in the running interpreter; :func:`deflate` raises
:class:`RuntimeError` if not.
"""

from __future__ import annotations

import ctypes
import threading

import numpy as np

__all__ = ["available", "deflate", "version"]

_COMP_OK = 0
# The level buffer holds the hash table and the intermediate-code buffer (4 bytes per input
# byte at most): 512 KiB keeps a whole BGZF block's codes in one deflate block. Its size
# decides block splits, so it is fixed.
_LEVEL_BUF = 1 << 19
# isal_zstream with its internal state is about 200 KB in ISA-L 2.3x: room to spare.
_STREAM = 1 << 19
_OUT = 1 << 17


class _Head(ctypes.Structure):
    _fields_ = [
        ("next_in", ctypes.c_void_p), ("avail_in", ctypes.c_uint32),
        ("total_in", ctypes.c_uint32), ("next_out", ctypes.c_void_p),
        ("avail_out", ctypes.c_uint32), ("total_out", ctypes.c_uint32),
        ("hufftables", ctypes.c_void_p), ("level", ctypes.c_uint32),
        ("level_buf_size", ctypes.c_uint32), ("level_buf", ctypes.c_void_p),
        ("end_of_stream", ctypes.c_uint16), ("flush", ctypes.c_uint16),
        ("gzip_flag", ctypes.c_uint16), ("hist_bits", ctypes.c_uint16),
    ]


def _load():
    try:
        from isal import isal_zlib

        lib = ctypes.CDLL(isal_zlib.__file__)
        init, run = lib.isal_deflate_stateless_init, lib.isal_deflate_stateless
    except (ImportError, OSError, AttributeError):
        return None
    init.argtypes, init.restype = [ctypes.c_void_p], None
    run.argtypes, run.restype = [ctypes.c_void_p], ctypes.c_int
    return init, run


_FUNCS = _load()
_local = threading.local()


def available() -> bool:
    """Whether ISA-L's stateless deflate can be called here."""
    return _FUNCS is not None and ctypes.sizeof(_Head) == 64


def version() -> str:
    from importlib.metadata import version as _v

    return f"ISA-L stateless via isal {_v('isal')}"


def _buffers():
    bufs = getattr(_local, "bufs", None)
    if bufs is None:
        bufs = (ctypes.create_string_buffer(_STREAM), ctypes.create_string_buffer(_LEVEL_BUF),
                ctypes.create_string_buffer(_OUT))
        _local.bufs = bufs
    return bufs


def deflate(data, level: int = 0) -> bytes | None:
    """Raw deflate of ``data`` (at most 64 KiB); ``None`` if it does not fit in 128 KiB.

    Parameters
    ----------
    data
        Any contiguous buffer (bytes, memoryview, uint8 array).
    level
        ISA-L level, 0-3.
    """
    if not available():
        raise RuntimeError("ISA-L stateless deflate is not available (python-isal not loadable)")
    init, run = _FUNCS
    src = np.frombuffer(data, dtype=np.uint8)
    stream, level_buf, out = _buffers()
    init(stream)
    head = _Head.from_buffer(stream)
    head.next_in = src.ctypes.data
    head.avail_in = src.size
    head.next_out = ctypes.addressof(out)
    head.avail_out = _OUT
    head.level = level
    if level:  # level 0 keeps its hash table in the stream and needs no level buffer
        ctypes.memset(level_buf, 0, _LEVEL_BUF)
        head.level_buf = ctypes.addressof(level_buf)
        head.level_buf_size = _LEVEL_BUF
    head.end_of_stream = 1
    ret = run(stream)
    if ret != _COMP_OK:
        return None
    return ctypes.string_at(out, head.total_out)
