"""Large files as content-defined chunks: cutting, naming, compressing and delta-encoding them.

A file of ``CHUNKED_FROM`` bytes or more is cut by FastCDC into chunks of about ``AVERAGE``
bytes, each named by the BLAKE3 hash of its bytes. Because the cut points depend on the
content, an edit that inserts or removes bytes (a safetensors header that grew) changes only
the chunks around it; the rest keep their names and are stored once.

A file is a list of pieces, in order: a chunk's name, its size, and whether it holds the
file's bytes or their XOR with the bytes at the same offset of a base file (the registered
parent's file at the same path). A full fine-tune changes every chunk, but its bf16 values
keep their sign and exponent, so the XOR is mostly zero bits and compresses far better than
the bytes do. Chunks are stored zstd-compressed when that saves space.

Nothing here touches storage: ``modelreg.chunk_store`` keeps the chunks, packs and file
manifests; the client cuts and names chunks with the same functions before it uploads.
"""

from __future__ import annotations

import struct
import threading
from collections.abc import Iterator
from typing import Any, NamedTuple, Protocol

from modelreg.errors import IntegrityError

CHUNKED_FROM = 8 << 20  # smaller files stay whole blobs
AVERAGE = 64 << 10  # FastCDC's average chunk size (cut points between 16 KiB and 256 KiB)
PACK_SIZE = 64 << 20  # chunks are stored together in packs of about this size

RAW, ZSTD = 0, 1  # how a chunk's bytes are stored
REF = 255  # on the wire: a chunk the server holds, sent by name only
_KEEP_COMPRESSED = 0.95  # zstd output kept when at most this share of the input
_XOR_GOOD_ENOUGH = 0.5  # a delta this small is taken without trying the plain chunk


class Piece(NamedTuple):
    """One stretch of a file: chunk ``chunk`` (a BLAKE3 digest) of ``size`` bytes, holding the
    file's bytes, or (``xor``) their XOR with the base file's bytes at the same offset."""

    chunk: bytes
    size: int
    xor: bool


_PIECE = struct.Struct("<32sIB")


def encode_pieces(pieces: list[Piece]) -> bytes:
    """A file's manifest as stored: 37 bytes a piece."""
    return b"".join(_PIECE.pack(p.chunk, p.size, int(p.xor)) for p in pieces)


def decode_pieces(data: bytes) -> list[Piece]:
    if len(data) % _PIECE.size:
        raise IntegrityError(f"a chunk manifest of {len(data)} bytes is cut short")
    return [Piece(c, s, bool(x)) for c, s, x in _PIECE.iter_unpack(data)]


def chunk_id(data: bytes | memoryview) -> bytes:
    """A chunk's name: the BLAKE3 digest of its bytes (32 bytes)."""
    import blake3

    return blake3.blake3(data).digest()


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


BLOCK = 16 << 20  # bytes read and cut at a time


def blocks(stream: Readable) -> Iterator[tuple[bytes, bytes, list[memoryview]]]:
    """A stream read a block at a time: (the bytes just read, the buffer they were cut in,
    its chunks). The cut of a chunk that may run past a block waits for the next one, so
    the chunks are those a cut of the whole stream gives: FastCDC starts afresh at every
    cut point."""
    from pyfastcdc import FastCDC

    cutter = FastCDC(AVERAGE)  # not safe to share between threads
    carry = b""
    while True:
        data = read_up_to(stream, BLOCK)
        last = len(data) < BLOCK
        buffer = carry + data if carry else data
        if not buffer:
            return
        view = memoryview(buffer)
        cuts = [(c.offset, c.length) for c in cutter.cut_buf(buffer)]
        if not last and len(cuts) > 1:
            start, _ = cuts.pop()
            carry = buffer[start:]
        else:
            carry = b""
        yield data, buffer, [view[start : start + n] for start, n in cuts]
        if last:
            return


def cut(stream: Readable) -> Iterator[memoryview]:
    """The chunks of a stream, in order."""
    for _, _, chunks in blocks(stream):
        yield from chunks


class Cut(NamedTuple):
    """A chunk of a file as a client sends it: its name, where it starts, its size."""

    chunk: bytes
    offset: int
    size: int


def hash_and_cut(stream: Readable) -> tuple[str, int, list[Cut]]:
    """(sha256, size, chunks) of a stream in one pass: each block is hashed in a second
    thread while its chunks are cut and named."""
    import hashlib
    from concurrent.futures import Future, ThreadPoolExecutor

    sha = hashlib.sha256()
    cuts: list[Cut] = []
    offset = 0
    with ThreadPoolExecutor(1, "modelreg-sha256") as hasher:
        hashing: Future[None] | None = None
        for data, _, chunks in blocks(stream):
            if hashing is not None:
                hashing.result()
            hashing = hasher.submit(sha.update, data)
            for chunk in chunks:
                cuts.append(Cut(chunk_id(chunk), offset, len(chunk)))
                offset += len(chunk)
        if hashing is not None:
            hashing.result()
    return sha.hexdigest(), offset, cuts


def xor(data: bytes | memoryview, base: bytes | memoryview) -> bytes:
    """The bytewise XOR of two equally long byte strings."""
    import numpy as np

    if len(data) != len(base):
        raise IntegrityError(f"a delta of {len(data)} bytes met {len(base)} bytes of its base")
    return np.bitwise_xor(
        np.frombuffer(data, dtype=np.uint8), np.frombuffer(base, dtype=np.uint8)
    ).tobytes()


_local = threading.local()


def _compressor() -> object:
    found = getattr(_local, "compressor", None)
    if found is None:
        import zstandard

        found = _local.compressor = zstandard.ZstdCompressor(level=1)
    return found


class Compressibility:
    """Whether compressing is worth trying: after 8 chunks in a row that did not shrink
    (random bytes, already compressed weights), only every 32nd is tried, until one does."""

    def __init__(self) -> None:
        self._misses = 0
        self._seen = 0

    def worth_trying(self) -> bool:
        self._seen += 1
        return self._misses < 8 or self._seen % 32 == 0

    def saw(self, shrank: bool) -> None:
        self._misses = 0 if shrank else self._misses + 1


def _decompressor() -> Any:
    found = getattr(_local, "decompressor", None)
    if found is None:
        import zstandard

        found = _local.decompressor = zstandard.ZstdDecompressor()
    return found


def compress(data: bytes | memoryview, hint: Compressibility | None = None) -> tuple[int, bytes]:
    """(codec, stored bytes): zstd when it saves at least 5%, else the bytes as they are."""
    if hint is not None and not hint.worth_trying():
        return RAW, bytes(data)
    packed: bytes = _compressor().compress(data)  # type: ignore[attr-defined]
    shrank = len(packed) <= len(data) * _KEEP_COMPRESSED
    if hint is not None:
        hint.saw(shrank)
    return (ZSTD, packed) if shrank else (RAW, bytes(data))


def decompress(codec: int, stored: bytes | memoryview, size: int) -> bytes:
    """A chunk's bytes from how they are stored; IntegrityError when they cannot be."""
    if codec == RAW:
        data = stored if isinstance(stored, bytes) else bytes(stored)
    elif codec == ZSTD:
        import zstandard

        try:
            data = _decompressor().decompress(stored, max_output_size=size)
        except zstandard.ZstdError as exc:
            raise IntegrityError(f"a stored chunk does not decompress: {exc}") from None
    else:
        raise IntegrityError(f"a stored chunk has unknown codec {codec}")
    if len(data) != size:
        raise IntegrityError(f"a stored chunk holds {len(data)} bytes, not {size}")
    return data


class Encoded(NamedTuple):
    """A new chunk as it will be stored: its piece in the file and its stored bytes."""

    piece: Piece
    codec: int
    stored: bytes


def encode(
    data: bytes | memoryview,
    name: bytes,
    base: bytes | None,
    hint: Compressibility | None = None,
) -> Encoded:
    """Store ``data`` (whose name is ``name``) as it is or, given the base file's bytes at
    the same offset, as its XOR with them: whichever is smaller once compressed."""
    if base is not None and len(base) == len(data):
        delta = xor(data, base)
        codec, stored = compress(delta)
        if len(stored) <= len(data) * _XOR_GOOD_ENOUGH:
            return Encoded(Piece(chunk_id(delta), len(data), True), codec, stored)
        plain_codec, plain = compress(data)
        if len(stored) < len(plain):
            return Encoded(Piece(chunk_id(delta), len(data), True), codec, stored)
        return Encoded(Piece(name, len(data), False), plain_codec, plain)
    codec, stored = compress(data, hint)
    return Encoded(Piece(name, len(data), False), codec, stored)


def check_chunk(name: bytes, data: bytes) -> bytes:
    """``data`` when it hashes to ``name``; IntegrityError naming the chunk otherwise."""
    if chunk_id(data) != name:
        raise IntegrityError(f"chunk {name.hex()} does not match its hash")
    return data


class Frame(NamedTuple):
    """A chunk on the wire: its name, where it lies in its file, and its stored bytes."""

    chunk: bytes
    offset: int
    size: int
    codec: int
    stored: bytes


_FRAME = struct.Struct("<32sQIBI")  # name, offset in the file, size, codec, stored length
MAX_CHUNK = 4 * AVERAGE  # FastCDC cuts no chunk larger; anything larger is refused


def frame(chunk: bytes, offset: int, size: int, codec: int, stored: bytes) -> bytes:
    """One chunk as a client uploads it (``REF`` and no bytes: one the server holds)."""
    return _FRAME.pack(chunk, offset, size, codec, len(stored)) + stored


def read_frames(stream: Readable) -> Iterator[Frame]:
    """The chunks of an upload's body, in order; InvalidInput names a malformed frame."""
    from modelreg.errors import InvalidInput

    index = 0
    while True:
        head = read_up_to(stream, _FRAME.size)
        if not head:
            return
        if len(head) < _FRAME.size:
            raise InvalidInput(f"chunk {index} of the upload is cut short in its header")
        chunk, offset, size, codec, length = _FRAME.unpack(head)
        sound = (codec in (RAW, ZSTD) and length <= size + 1024) or (codec == REF and length == 0)
        if not 0 < size <= MAX_CHUNK or not sound:
            raise InvalidInput(
                f"chunk {index} of the upload declares {size} bytes stored as {length} with"
                f" codec {codec}: a chunk holds 1 to {MAX_CHUNK} bytes, raw (0), zstd (1) or"
                f" a reference to a held chunk ({REF}, nothing stored)"
            )
        stored = read_up_to(stream, length)
        if len(stored) < length:
            raise InvalidInput(f"chunk {index} of the upload is cut short in its bytes")
        yield Frame(chunk, offset, size, codec, stored)
        index += 1


def read_up_to(stream: Readable, size: int) -> bytes:
    """``size`` bytes of a stream, fewer only where it ends."""
    parts: list[bytes] = []
    got = 0
    while got < size:
        block = stream.read(size - got)
        if not block:
            break
        parts.append(block)
        got += len(block)
    return b"".join(parts)
