"""A synthetic family of bf16 safetensors checkpoints for the chunked-storage benchmark.

``make_family(out_dir)`` writes 11 checkpoints without downloading anything: one base model
and 10 versions derived from it, each a complete safetensors file. Together they model the
ways real checkpoints of one model differ from each other, and each kind exercises a different
part of a chunked, deduplicating store:

``base``
    A transformer-like model: an embedding (vocab x d), 12 layers of ``attn_norm`` (d),
    ``q``, ``k``, ``v``, ``o`` (d x d), ``mlp_norm`` (d), ``mlp_up`` (d x 4d) and
    ``mlp_down`` (4d x d), a ``final_norm`` (d) and a head stored as (vocab x d). d and
    vocab are chosen so the file is about ``size_mib`` MiB. Weights are N(0, 0.02) and norms
    1 + N(0, 0.02), stored as bf16 (the top 16 bits of the float32), so the bytes are as
    incompressible as real weights: the sign and exponent byte compresses a little, the
    mantissa byte not at all.
``header-edit-1``, ``header-edit-2``
    The same tensors under a different ``__metadata__`` description, so the header's length
    changes and every tensor's offset in the file shifts (by a multiple of 8: the header is
    padded with spaces to 8 bytes, as the safetensors writer does). Fixed-size chunks all
    change; content-defined chunking finds every chunk but the first again.
``vocab-resize``
    The embedding and the head grow by 256 rows (new rows random, old rows identical). The
    head is stored (vocab x d) rather than (d x vocab) so that the growth appends rows to
    both instead of interleaving with every row. The header changes and everything after
    the embedding shifts: content-defined chunking plus appended rows.
``last-layers-1`` .. ``last-layers-3``
    Fine-tunes of the last 2 of the 12 layers and of the head: those tensors get
    ``w + N(0, 1e-3)``, computed in float32 from the bf16 values and rounded back to bf16;
    every other tensor, and the header, stay byte-identical. Unchanged tensors deduplicate;
    the changed ones (about a fifth of the bytes) are new, or small deltas against the
    parent.
``lora-1``, ``lora-2``
    A merged rank-8 low-rank adapter on ``q`` and ``v`` of every layer:
    ``w + A @ B`` with A, B ~ N(0, 0.01). Everything else is byte-identical, so the same
    dedup as the last-layers family, with the changes spread over all layers.
``full-1``, ``full-2``
    Full fine-tunes with a small relative update, ``w * (1 + N(0, 5e-3))`` rounded to bf16,
    on every tensor, under the same header. About 60% of the values change, 80% of those by
    one unit in the last place and nearly all by at most two: the mantissa (low) byte
    changes and the sign and exponent (high) byte almost never does. Every chunk changes,
    so nothing deduplicates; only a delta against the parent (XOR, then a general-purpose
    compressor) is small.

All derived versions have ``parent="base"``. Generation is deterministic for a given seed
(one ``numpy.random.Generator`` per variant and tensor) and streams: tensors are written one
block of rows at a time, so the memory used stays around 100 MB whatever the file size. The
derived versions copy or transform the base's bytes, read back from the base file.

Other benchmarks import it with ``benchmarks/`` on ``sys.path``::

    from checkpoints import changed_bytes, make_family

or run it alone, to see the family and how long it takes to write::

    .venv/bin/python benchmarks/checkpoints.py OUT_DIR [--size-mib 1024] [--seed 0] [--diff]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import struct
import sys
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO

import numpy as np
from numpy.typing import NDArray

MIB = 1 << 20
N_LAYERS = 12
WEIGHT_STD = 0.02
VOCAB_GROWTH = 256
LAST_LAYERS = 2
LAST_LAYERS_STD = 1e-3
LORA_RANK = 8
LORA_STD = 0.01
FULL_REL_STD = 5e-3
# elements per generated block (16 MiB of float32) and bytes per copied block
BLOCK_ELEMS = 1 << 22
COPY_BYTES = 16 * MIB

# (name, kind) of each checkpoint, in the order make_family writes and returns them
FAMILY: tuple[tuple[str, str], ...] = (
    ("base", "base"),
    ("header-edit-1", "header"),
    ("header-edit-2", "header"),
    ("vocab-resize", "vocab"),
    ("last-layers-1", "last-layers"),
    ("last-layers-2", "last-layers"),
    ("last-layers-3", "last-layers"),
    ("lora-1", "lora"),
    ("lora-2", "lora"),
    ("full-1", "full"),
    ("full-2", "full"),
)

_DESCRIPTION = "modelreg storage benchmark: synthetic bf16 transformer"
# the header edits: one longer and one shorter than the base's, by more than the padding
_EDITED_DESCRIPTIONS = {
    "header-edit-1": _DESCRIPTION + ", model card revised: trained on synthetic data only, "
    "released for storage benchmarks, not for inference",
    "header-edit-2": "synthetic checkpoint",
}
_DTYPE_SIZES = {"BF16": 2, "F16": 2, "F32": 4, "F64": 8, "I8": 1, "U8": 1, "BOOL": 1}

U16 = NDArray[np.uint16]
F32 = NDArray[np.float32]
Buffer = U16 | memoryview
# a per-tensor edit: given the tensor and its generator, a function of (first row, rows)
Edit = Callable[["TensorSpec", np.random.Generator], Callable[[int, U16], U16]]


@dataclass(frozen=True)
class Variant:
    """One checkpoint of the family: its file, and which checkpoint it derives from."""

    name: str
    path: Path
    parent: str | None
    kind: str


@dataclass(frozen=True)
class TensorSpec:
    name: str
    shape: tuple[int, ...]

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def rows_cols(self) -> tuple[int, int]:
        """The tensor as a matrix: rows are the unit of the blocks it is written in."""
        if len(self.shape) == 1:
            return 1, self.shape[0]
        return self.shape[0], math.prod(self.shape[1:])


@dataclass(frozen=True)
class TensorEntry:
    """A tensor in a safetensors header; ``begin`` and ``end`` are relative to the data."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    begin: int
    end: int


@dataclass(frozen=True)
class Header:
    data_start: int
    metadata: dict[str, str]
    tensors: tuple[TensorEntry, ...]  # in the order of their data in the file


def model_dims(size_mib: int) -> tuple[int, int]:
    """(d, vocab) of the base model whose bf16 file is about ``size_mib`` MiB.

    d is the largest multiple of 64 (of 8 for tiny sizes) with the vocabulary at least
    about 8 d; the vocabulary, a multiple of 8, then fills the rest of the size.
    """
    if size_mib < 1:
        raise ValueError(f"size_mib must be at least 1, not {size_mib}")
    params = size_mib * MIB // 2
    # layers: 12 d^2 and 2 norms each; embedding and head: vocab d each; the final norm
    raw = math.sqrt(params / (12 * N_LAYERS + 16))
    step = 64 if raw >= 256 else 8
    d = max(step, int(raw) // step * step)
    layer_params = N_LAYERS * (12 * d * d + 2 * d) + d
    vocab = round((params - layer_params) / (2 * d) / 8) * 8
    return d, max(vocab, 8)


def tensor_specs(d: int, vocab: int) -> list[TensorSpec]:
    """The base model's tensors in file order: embedding, layers 0..11, final norm, head."""
    specs = [TensorSpec("embed.weight", (vocab, d))]
    for i in range(N_LAYERS):
        layer = f"layers.{i}."
        specs += [
            TensorSpec(layer + "attn_norm.weight", (d,)),
            TensorSpec(layer + "q.weight", (d, d)),
            TensorSpec(layer + "k.weight", (d, d)),
            TensorSpec(layer + "v.weight", (d, d)),
            TensorSpec(layer + "o.weight", (d, d)),
            TensorSpec(layer + "mlp_norm.weight", (d,)),
            TensorSpec(layer + "mlp_up.weight", (d, 4 * d)),
            TensorSpec(layer + "mlp_down.weight", (4 * d, d)),
        ]
    specs += [TensorSpec("final_norm.weight", (d,)), TensorSpec("head.weight", (vocab, d))]
    return specs


def make_family(
    out_dir: Path,
    size_mib: int = 1024,
    seed: int = 0,
    *,
    progress: Callable[[Variant, float], None] | None = None,
) -> list[Variant]:
    """Write the 11 checkpoints into ``out_dir`` and return them in ``FAMILY`` order.

    ``progress``, if given, is called after each file with the variant and the seconds it
    took to write.
    """
    d, vocab = model_dims(size_mib)
    specs = tensor_specs(d, vocab)
    out_dir.mkdir(parents=True, exist_ok=True)
    base_path = out_dir / "base.safetensors"
    variants: list[Variant] = []
    for name, kind in FAMILY:
        path = out_dir / f"{name}.safetensors"
        start = time.perf_counter()
        if kind == "base":
            _write_base(path, specs, seed)
        else:
            _write_derived(path, base_path, specs, name, kind, seed)
        variant = Variant(name, path, None if kind == "base" else "base", kind)
        variants.append(variant)
        if progress is not None:
            progress(variant, time.perf_counter() - start)
    return variants


def changed_bytes(a: Path, b: Path) -> int:
    """Bytes of ``a`` and ``b`` that differ at the same offsets, plus their length difference.

    The files are compared in blocks, so memory stays small whatever their size.
    """
    size_a, size_b = a.stat().st_size, b.stat().st_size
    common = min(size_a, size_b)
    buf_a = np.empty(COPY_BYTES, dtype=np.uint8)
    buf_b = np.empty(COPY_BYTES, dtype=np.uint8)
    changed = abs(size_a - size_b)
    with a.open("rb", buffering=0) as fa, b.open("rb", buffering=0) as fb:
        done = 0
        while done < common:
            n = min(COPY_BYTES, common - done)
            _read_exactly(fa, buf_a[:n])
            _read_exactly(fb, buf_b[:n])
            changed += int(np.count_nonzero(buf_a[:n] != buf_b[:n]))
            done += n
    return changed


def read_header(path: Path) -> Header:
    """The header of a safetensors file, its tensors sorted by where their data starts."""
    with path.open("rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        if length > 100 * MIB:
            raise ValueError(f"{path}: header length {length} is not plausible")
        raw: dict[str, Any] = json.loads(f.read(length))
    metadata = raw.pop("__metadata__", None) or {}
    tensors = [
        TensorEntry(name, t["dtype"], tuple(t["shape"]), *t["data_offsets"])
        for name, t in raw.items()
    ]
    tensors.sort(key=lambda t: (t.begin, t.end))
    return Header(8 + length, metadata, tuple(tensors))


def check_safetensors(path: Path) -> Header:
    """Read the header and check what a loader checks: the tensors' data, in offset order,
    is contiguous from 0, each the size of its shape and dtype, and ends at the file's end.
    """
    header = read_header(path)
    offset = 0
    for t in header.tensors:
        if t.begin != offset:
            raise ValueError(f"{path}: {t.name} starts at {t.begin}, expected {offset}")
        expected = math.prod(t.shape) * _DTYPE_SIZES[t.dtype]
        if t.end - t.begin != expected:
            raise ValueError(f"{path}: {t.name} has {t.end - t.begin} bytes, not {expected}")
        offset = t.end
    data = path.stat().st_size - header.data_start
    if offset != data:
        raise ValueError(f"{path}: tensors cover {offset} bytes of {data}")
    return header


# writing


def _header_bytes(specs: Sequence[TensorSpec], metadata: dict[str, str]) -> bytes:
    header: dict[str, Any] = {"__metadata__": metadata}
    offset = 0
    for spec in specs:
        size = spec.numel * 2
        header[spec.name] = {
            "dtype": "BF16",
            "shape": list(spec.shape),
            "data_offsets": [offset, offset + size],
        }
        offset += size
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw


def _write(
    path: Path,
    specs: Sequence[TensorSpec],
    metadata: dict[str, str],
    chunks: Callable[[TensorSpec], Iterable[Buffer]],
) -> None:
    """Write a bf16 safetensors file, each tensor's bytes from ``chunks(spec)`` in order."""
    partial = path.with_name(path.name + ".partial")
    with partial.open("wb") as f:
        f.write(_header_bytes(specs, metadata))
        for spec in specs:
            written = 0
            for chunk in chunks(spec):
                view = memoryview(chunk)
                f.write(view)
                written += view.nbytes
            if written != spec.numel * 2:
                raise AssertionError(f"{spec.name}: wrote {written} bytes, not {spec.numel * 2}")
    os.replace(partial, path)


def _metadata(name: str) -> dict[str, str]:
    return {"format": "pt", "description": _EDITED_DESCRIPTIONS.get(name, _DESCRIPTION)}


def _rng(seed: int, variant: str, tensor: str) -> np.random.Generator:
    """The generator of one tensor of one variant: independent of the order of writing."""
    return np.random.default_rng([seed, zlib.crc32(variant.encode()), zlib.crc32(tensor.encode())])


def _truncate_bf16(x: F32) -> U16:
    """float32 to bf16 by keeping the top 16 bits."""
    return (x.view(np.uint32) >> 16).astype("<u2")


def _round_bf16(x: F32) -> U16:
    """float32 to bf16, rounding to nearest even as ``tensor.to(torch.bfloat16)`` does.

    (Values here are small and finite: no NaN or overflow to care about.)
    """
    bits = x.view(np.uint32)
    bits += np.uint32(0x7FFF) + ((bits >> 16) & np.uint32(1))
    bits >>= 16
    return bits.astype("<u2")


def _bf16_to_f32(x: U16) -> F32:
    bits = x.astype(np.uint32)
    bits <<= 16
    return bits.view(np.float32)


def _random_rows(
    rng: np.random.Generator, rows: int, cols: int, center: float = 0.0
) -> Iterator[U16]:
    """``rows`` x ``cols`` of N(center, WEIGHT_STD) as bf16, in blocks of rows."""
    step = max(1, BLOCK_ELEMS // cols)
    for row in range(0, rows, step):
        x = rng.standard_normal(min(step, rows - row) * cols, dtype=np.float32)
        x *= WEIGHT_STD
        if center:
            x += center
        yield _truncate_bf16(x)


def _center(spec: TensorSpec) -> float:
    return 1.0 if spec.name.endswith("norm.weight") else 0.0


def _write_base(path: Path, specs: Sequence[TensorSpec], seed: int) -> None:
    def chunks(spec: TensorSpec) -> Iterator[U16]:
        return _random_rows(_rng(seed, "base", spec.name), *spec.rows_cols, _center(spec))

    _write(path, specs, _metadata("base"), chunks)


# the derived versions


def _additive(std: float) -> Edit:
    def edit(spec: TensorSpec, rng: np.random.Generator) -> Callable[[int, U16], U16]:
        def apply(row: int, block: U16) -> U16:
            w = _bf16_to_f32(block)
            noise = rng.standard_normal(w.shape, dtype=np.float32)
            noise *= std
            w += noise
            return _round_bf16(w)

        return apply

    return edit


def _relative(std: float) -> Edit:
    def edit(spec: TensorSpec, rng: np.random.Generator) -> Callable[[int, U16], U16]:
        def apply(row: int, block: U16) -> U16:
            w = _bf16_to_f32(block)
            factor = rng.standard_normal(w.shape, dtype=np.float32)
            factor *= std
            factor += 1.0
            w *= factor
            return _round_bf16(w)

        return apply

    return edit


def _lora(rank: int, std: float) -> Edit:
    def edit(spec: TensorSpec, rng: np.random.Generator) -> Callable[[int, U16], U16]:
        rows, cols = spec.rows_cols
        a = rng.standard_normal((rows, rank), dtype=np.float32) * np.float32(std)
        b = rng.standard_normal((rank, cols), dtype=np.float32) * np.float32(std)

        def apply(row: int, block: U16) -> U16:
            w = _bf16_to_f32(block)
            w += a[row : row + w.shape[0]] @ b
            return _round_bf16(w)

        return apply

    return edit


def _edits(kind: str, specs: Sequence[TensorSpec]) -> dict[str, Edit]:
    """Which tensors a derived kind changes, and how."""
    if kind == "last-layers":
        last = tuple(f"layers.{i}." for i in range(N_LAYERS - LAST_LAYERS, N_LAYERS))
        edit = _additive(LAST_LAYERS_STD)
        return {s.name: edit for s in specs if s.name.startswith(last) or s.name == "head.weight"}
    if kind == "lora":
        edit = _lora(LORA_RANK, LORA_STD)
        return {s.name: edit for s in specs if s.name.endswith((".q.weight", ".v.weight"))}
    if kind == "full":
        edit = _relative(FULL_REL_STD)
        return {s.name: edit for s in specs}
    return {}


class _Source:
    """The base checkpoint, read back tensor by tensor."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.header = read_header(path)
        self.tensors = {t.name: t for t in self.header.tensors}
        self._file: BinaryIO | None = None

    def __enter__(self) -> _Source:
        self._file = self.path.open("rb", buffering=0)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._file is not None:
            self._file.close()

    def _seek(self, name: str) -> tuple[BinaryIO, TensorEntry]:
        assert self._file is not None, "use _Source as a context manager"
        entry = self.tensors[name]
        self._file.seek(self.header.data_start + entry.begin)
        return self._file, entry

    def raw(self, name: str) -> Iterator[memoryview]:
        """The tensor's bytes as they are, in blocks (one buffer, reused: write it at once)."""
        f, entry = self._seek(name)
        buf = np.empty(min(COPY_BYTES, entry.end - entry.begin), dtype=np.uint8)
        left = entry.end - entry.begin
        while left:
            n = min(left, buf.size)
            _read_exactly(f, buf[:n])
            yield memoryview(buf[:n])
            left -= n

    def blocks(self, spec: TensorSpec) -> Iterator[tuple[int, U16]]:
        """(first row, rows as a 2-D bf16 array) of the tensor, in blocks of rows."""
        f, _ = self._seek(spec.name)
        rows, cols = spec.rows_cols
        step = max(1, BLOCK_ELEMS // cols)
        for row in range(0, rows, step):
            block = np.empty((min(step, rows - row), cols), dtype="<u2")
            _read_exactly(f, block)
            yield row, block


def _read_exactly(f: BinaryIO, out: NDArray[Any]) -> None:
    view = memoryview(out).cast("B")
    done = 0
    while done < view.nbytes:
        n = f.readinto(view[done:])
        if not n:
            raise EOFError(f"{f.name}: file ended {view.nbytes - done} bytes early")
        done += n


def _write_derived(
    path: Path, base_path: Path, specs: Sequence[TensorSpec], name: str, kind: str, seed: int
) -> None:
    out_specs = list(specs)
    if kind == "vocab":
        out_specs = [
            TensorSpec(s.name, (s.shape[0] + VOCAB_GROWTH, *s.shape[1:]))
            if s.name in ("embed.weight", "head.weight")
            else s
            for s in specs
        ]
    edits = _edits(kind, specs)
    with _Source(base_path) as base:

        def chunks(spec: TensorSpec) -> Iterator[Buffer]:
            rng = _rng(seed, name, spec.name)
            if spec.name in edits:
                apply = edits[spec.name](spec, rng)
                for row, block in base.blocks(spec):
                    yield apply(row, block)
                return
            yield from base.raw(spec.name)
            old = base.tensors[spec.name]
            added = spec.shape[0] - old.shape[0]
            if added:
                yield from _random_rows(rng, added, spec.rows_cols[1])

        _write(path, out_specs, _metadata(name), chunks)


def _main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--size-mib", type=int, default=1024, help="base size (default 1024)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--diff", action="store_true", help="also print the bytes that differ from the parent"
    )
    args = parser.parse_args(argv)
    d, vocab = model_dims(args.size_mib)
    print(f"d={d} vocab={vocab} layers={N_LAYERS} -> {args.out_dir}")
    print(f"{'variant':<15} {'kind':<12} {'MiB':>9} {'seconds':>8}")

    def show(variant: Variant, seconds: float) -> None:
        mib = variant.path.stat().st_size / MIB
        print(f"{variant.name:<15} {variant.kind:<12} {mib:>9.2f} {seconds:>8.2f}", flush=True)

    start = time.perf_counter()
    variants = make_family(args.out_dir, args.size_mib, args.seed, progress=show)
    print(f"total {time.perf_counter() - start:.1f} s")
    if args.diff:
        paths = {v.name: v.path for v in variants}
        print(f"{'variant':<15} {'changed bytes vs parent':>24} {'fraction':>9}")
        for v in variants:
            if v.parent is None:
                continue
            changed = changed_bytes(paths[v.parent], v.path)
            size = max(v.path.stat().st_size, paths[v.parent].stat().st_size)
            print(f"{v.name:<15} {changed:>24,} {changed / size:>9.4f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(_main())
