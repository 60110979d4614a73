"""Which model files run code when they are loaded, decided from their content.

A pickle (and everything built on it: joblib, cloudpickle, ``torch.save``) can call any
function while it is read, so loading one is running its author's code. ``modelreg.load``
refuses such files unless the caller passes ``trust=True``. The decision reads bytes, never
the file name: a pickle renamed ``weights.bin`` is still a pickle.

What is recognised:
- pickle streams: protocol 2-5 (``\\x80`` and the protocol byte, then valid opcodes), and
  protocol 0/1 (the whole file parses as pickle opcodes up to its final ``.``, STOP);
- compressed pickles, as joblib writes them (zlib, gzip, bz2, lzma, xz): a head is
  decompressed and looked at again;
- zip archives holding a pickle, by member name (``*.pkl``, ``data.pkl`` as in ``torch.save``)
  or by member content;
- NumPy ``.npy`` arrays of Python objects (stored as a pickle).

A skops file is a zip of JSON and plain arrays: it passes.
"""

from __future__ import annotations

import bz2
import io
import lzma
import pickletools
import zipfile
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

from modelreg.errors import UnsafeModel

HEAD = 64 * 1024  # bytes read to decide; enough for every format's header
INFLATED_HEAD = 64 * 1024  # at most this much is decompressed (a zip bomb costs nothing)
OPCODES_TO_CHECK = 16  # a pickle's first opcodes must parse, so random bytes do not match
MIN_OPCODES = 3  # ... or at least these many before a head cut short ends
MAX_MEMBERS = 10_000
MAX_DEPTH = 3


def unsafe_reason(path: Path) -> str | None:
    """Why loading the file at ``path`` would run code, or None when it would not."""
    with open(path, "rb") as f:
        head = f.read(HEAD)
        if head[:4] == b"PK\x03\x04":
            return _zip_reason(f, depth=0)
        complete = len(head) < HEAD
        if not complete and head[:1] != b"\x80":
            # a protocol 0/1 pickle ends with STOP: only a file ending in "." is parsed whole
            f.seek(-1, io.SEEK_END)
            if f.read(1) == b".":
                f.seek(0)
                protocol = _pickle_opcodes(f, whole=True)
                if protocol is not None:
                    return f"a pickle stream (protocol {protocol})"
    return _inspect(head, complete=complete, depth=0)


def check(root: Path, paths: Iterable[str], *, trust: bool) -> dict[str, str]:
    """Every file (manifest path under ``root``) that runs code when loaded, with the reason.

    Raises UnsafeModel naming them all unless ``trust``; returns them when trusted.
    """
    found = {p: r for p in paths if (r := unsafe_reason(root / p)) is not None}
    if found and not trust:
        lines = "; ".join(f"{path} is {reason}" for path, reason in found.items())
        them = "it" if len(found) == 1 else "them"
        raise UnsafeModel(
            f"{lines}: loading {them} runs code; pass trust=True if you trust its author",
            files=found,
        )
    return found


def _inspect(data: bytes, *, complete: bool, depth: int) -> str | None:
    """The reason for bytes ``data`` (a file's head, or all of it when ``complete``)."""
    protocol = _pickle_protocol(data, complete=complete)
    if protocol is not None:
        return f"a pickle stream (protocol {protocol})"
    if depth >= MAX_DEPTH:
        return None
    if data[:4] == b"PK\x03\x04" and complete:
        return _zip_reason(io.BytesIO(data), depth=depth)
    if data[:6] == b"\x93NUMPY":
        return _npy_reason(data)
    for name, inflated in _decompressed_heads(data):
        reason = _inspect(inflated, complete=False, depth=depth + 1)
        if reason is not None:
            return f"a {name}-compressed file holding {reason} (as joblib writes them)"
    return None


def _pickle_protocol(data: bytes, *, complete: bool) -> int | None:
    if len(data) > 1 and data[0] == 0x80 and 2 <= data[1] <= 5:
        return _pickle_opcodes(io.BytesIO(data), whole=False)
    if complete and data.endswith(b"."):
        return _pickle_opcodes(io.BytesIO(data), whole=True)
    return None


def _pickle_opcodes(stream: IO[bytes], *, whole: bool) -> int | None:
    """The protocol when ``stream`` parses as pickle opcodes (its first opcodes, or all of it
    up to STOP at its very end when ``whole``), else None. Parsing never builds objects."""
    protocol = 0
    count = 0
    try:
        for opcode, arg, _pos in pickletools.genops(stream):
            count += 1
            protocol = (
                arg
                if opcode.name == "PROTO" and isinstance(arg, int)
                else max(protocol, opcode.proto)
            )
            if opcode.name == "STOP":
                return protocol if not whole or stream.read(1) == b"" else None
            if not whole and count >= OPCODES_TO_CHECK:
                return protocol
    except Exception:
        # Malformed at once: not a pickle. Cut short after a few good opcodes: a head that
        # ends inside a large argument (an array's bytes), so a pickle all the same.
        return protocol if not whole and count >= MIN_OPCODES else None
    return None


def _decompressed_heads(data: bytes) -> Iterable[tuple[str, bytes]]:
    """The first bytes of ``data`` decompressed by each codec whose magic it starts with."""
    candidates: list[tuple[str, Any]] = []
    if data[:2] == b"ZF":  # joblib's old zlib format: "ZF", a length, then a zlib stream
        start = data.find(b"x", 2, 64)
        if start > 0:
            data = data[start:]
    if data[:1] == b"x":
        candidates.append(("zlib", zlib.decompressobj()))
    if data[:2] == b"\x1f\x8b":
        candidates.append(("gzip", zlib.decompressobj(16 + zlib.MAX_WBITS)))
    if data[:3] == b"BZh":
        candidates.append(("bz2", bz2.BZ2Decompressor()))
    if data[:6] == b"\xfd7zXZ\x00":
        candidates.append(("xz", lzma.LZMADecompressor(format=lzma.FORMAT_XZ)))
    if data[:1] == b"\x5d":
        candidates.append(("lzma", lzma.LZMADecompressor(format=lzma.FORMAT_ALONE)))
    for name, decompressor in candidates:
        try:
            if isinstance(decompressor, (bz2.BZ2Decompressor, lzma.LZMADecompressor)):
                inflated = decompressor.decompress(data, max_length=INFLATED_HEAD)
            else:
                inflated = decompressor.decompress(data, INFLATED_HEAD)
        except (OSError, EOFError, ValueError, zlib.error, lzma.LZMAError):
            continue
        if inflated:
            yield name, inflated


def _zip_reason(f: IO[bytes], *, depth: int) -> str | None:
    try:
        archive = zipfile.ZipFile(f)
    except (zipfile.BadZipFile, OSError):
        return None
    with archive:
        members = archive.infolist()[:MAX_MEMBERS]
        for info in members:
            base = info.filename.rsplit("/", 1)[-1]
            if base == "data.pkl":
                return f"a zip archive holding {info.filename} (the torch.save format)"
            if base.endswith(".pkl") or base.endswith(".pickle"):
                return f"a zip archive holding the pickle {info.filename}"
        for info in members:
            if info.is_dir():
                continue
            try:
                with archive.open(info) as member:
                    head = member.read(HEAD)
            except (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError):
                continue
            reason = _inspect(head, complete=info.file_size <= HEAD, depth=depth + 1)
            if reason is not None:
                return f"a zip archive whose member {info.filename} is {reason}"
    return None


def _npy_reason(data: bytes) -> str | None:
    header = data[:4096]
    if b"'descr': '|O'" in header or b"'descr': \"|O\"" in header:
        return "a NumPy array of Python objects (stored as a pickle)"
    return None
