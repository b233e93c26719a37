"""Question embeddings through ONNX Runtime, without torch on the chat path.

The chat path embeds one short question per turn. Through torch (even with the int8 matmuls of
``embedding_model.quantize_int8``) that costs ~30 ms of CPU and keeps torch (~0.5 GB) resident in every serving
process. Exported once to ONNX with mean pooling and L2 normalisation inside the graph, and dynamically quantised
to int8 by ONNX Runtime, the same model answers in ~3 ms on one thread (``python -m bot.retrieval.onnx_encoder
bench``; figures in docs/benchmarks.md). Passages are still embedded by the torch model when the index is built,
so the vectors of the knowledge base keep full float32 precision.

The export needs torch and the ``onnx`` package (both in the lock) and runs once per model, at setup or on first
use; the result is cached under ``$VNA_CACHE_DIR/onnx/<model key>/`` and reused by every clone and process.

    python -m bot.retrieval.onnx_encoder export [--no-quantize]
    python -m bot.retrieval.onnx_encoder bench
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from bot.config import Settings
    from bot.retrieval.embedding_model import Encoder

logger = logging.getLogger(__name__)

#: Bump whenever the exported graph changes; a cached export with another version is rebuilt.
EXPORT_VERSION = 1
MODEL_FILE = "query_encoder.onnx"
STAMP_FILE = "onnx_stamp.json"
OPSET = 17


class OnnxExportError(RuntimeError):
    """The model cannot be exported (unsupported pipeline, missing files); the caller falls back to torch."""


def _files_digest(model_dir: Path) -> str:
    """Identity of a sentence-transformers folder: its configuration and tokenizer, and the size and time of
    its weight files (hashing 470 MB of weights on every start would cost seconds)."""
    h = hashlib.sha256()
    for name in sorted(os.listdir(model_dir)):
        path = model_dir / name
        if not path.is_file():
            continue
        if name.endswith((".json", ".txt", ".model")):
            h.update(name.encode() + b"\0" + path.read_bytes())
        elif name.endswith((".safetensors", ".bin")):
            stat = path.stat()
            h.update(f"{name}\0{stat.st_size}\0{int(stat.st_mtime)}".encode())
    return h.hexdigest()[:16]


def export_dir(model_path: str | Path, cache_dir: Path, quantize: bool) -> Path:
    model_dir = Path(model_path)
    key = hashlib.sha256(
        f"{_files_digest(model_dir)}|{EXPORT_VERSION}|{int(quantize)}".encode()
    ).hexdigest()[:16]
    return cache_dir / "onnx" / f"{model_dir.name}-{'int8' if quantize else 'fp32'}-{key}"


def _is_complete(folder: Path) -> bool:
    return (folder / MODEL_FILE).is_file() and (folder / "tokenizer.json").is_file() and (folder / STAMP_FILE).is_file()


@contextlib.contextmanager
def _export_lock(target: Path) -> Iterator[None]:
    """One exporter at a time per target (two first runs started together must not both write it)."""
    import fcntl

    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.with_name(target.name + ".lock"), "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _pipeline(model_dir: Path) -> dict:
    """Check the folder is Transformer -> mean Pooling [-> Normalize] and return what the export needs."""
    modules_file = model_dir / "modules.json"
    if not modules_file.is_file():
        raise OnnxExportError(f"{model_dir} is not a sentence-transformers folder (no modules.json)")
    modules = json.loads(modules_file.read_text(encoding="utf-8"))
    kinds = [m.get("type", "").rsplit(".", 1)[-1] for m in modules]
    if kinds[:2] != ["Transformer", "Pooling"] or kinds[2:] not in ([], ["Normalize"]):
        raise OnnxExportError(f"unsupported sentence-transformers pipeline {kinds}")
    pooling = json.loads((model_dir / modules[1]["path"] / "config.json").read_text(encoding="utf-8"))
    mode = pooling.get("pooling_mode")
    if not (mode == "mean" or (mode is None and pooling.get("pooling_mode_mean_tokens"))):
        raise OnnxExportError(f"only mean pooling is exported (found {pooling})")
    st_config = {}
    if (model_dir / "sentence_bert_config.json").is_file():
        st_config = json.loads((model_dir / "sentence_bert_config.json").read_text(encoding="utf-8"))
    if st_config.get("do_lower_case"):
        raise OnnxExportError("do_lower_case models are not exported")
    if not (model_dir / "tokenizer.json").is_file():
        raise OnnxExportError(f"{model_dir} has no tokenizer.json (a fast tokenizer is needed)")
    return {"normalize": kinds[2:] == ["Normalize"], "max_seq_length": st_config.get("max_seq_length")}


def export(model_path: str | Path, cache_dir: Path, *, quantize: bool = True, progress: bool = True) -> Path:
    """Export the model's query path to ONNX (int8 unless ``quantize`` is False) into the cache; idempotent."""
    model_dir = Path(model_path)
    target = export_dir(model_dir, cache_dir, quantize)
    if _is_complete(target):
        return target
    info = _pipeline(model_dir)
    with _export_lock(target):
        if _is_complete(target):
            return target
        started = time.monotonic()
        if progress:
            print(f"Exporting the question encoder to ONNX ({'int8' if quantize else 'float32'}) …", file=sys.stderr)
        tmp = Path(tempfile.mkdtemp(prefix=target.name + ".", dir=target.parent))
        try:
            _export_graph(model_dir, tmp, info["normalize"], quantize)
            shutil.copy2(model_dir / "tokenizer.json", tmp / "tokenizer.json")
            for name in ("tokenizer_config.json", "special_tokens_map.json"):
                if (model_dir / name).is_file():
                    shutil.copy2(model_dir / name, tmp / name)
            stamp = {
                "export_version": EXPORT_VERSION,
                "source": str(model_dir),
                "quantized": quantize,
                "normalize": info["normalize"],
                "opset": OPSET,
                "seconds": round(time.monotonic() - started, 1),
            }
            (tmp / STAMP_FILE).write_text(json.dumps(stamp, indent=2), encoding="utf-8")
            shutil.rmtree(target, ignore_errors=True)
            tmp.rename(target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        logger.info("question encoder exported to %s in %.1f s", target, time.monotonic() - started)
    return target


def _export_graph(model_dir: Path, out: Path, normalize: bool, quantize: bool) -> None:
    import inspect

    import torch
    from transformers import AutoModel

    try:
        import onnx  # noqa: F401 - torch's exporter needs it
    except ImportError as exc:  # pragma: no cover - the lock installs it
        raise OnnxExportError("the 'onnx' package is missing (it is in requirements/lock.txt)") from exc

    # eager attention: the traced graph of the SDPA path depends on the tracing input's length
    model = AutoModel.from_pretrained(model_dir, attn_implementation="eager", local_files_only=True).eval()
    takes_types = "token_type_ids" in inspect.signature(model.forward).parameters

    class QueryEncoder(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            kwargs = {"input_ids": input_ids, "attention_mask": attention_mask}
            if takes_types:
                # explicit zeros: the default comes from a buffer sliced to the traced length
                kwargs["token_type_ids"] = torch.zeros_like(input_ids)
            hidden = self.inner(**kwargs).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
            if normalize:
                pooled = torch.nn.functional.normalize(pooled, p=2.0, dim=1)
            return pooled

    ids = torch.tensor([[0, 10, 20, 30, 40, 2], [0, 11, 21, 2, 1, 1]], dtype=torch.long)
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]], dtype=torch.long)
    fp32 = out / "fp32.onnx"
    with torch.inference_mode(), contextlib.redirect_stderr(open(os.devnull, "w")):
        torch.onnx.export(
            QueryEncoder(model), (ids, mask), str(fp32),
            input_names=["input_ids", "attention_mask"], output_names=["embedding"],
            dynamic_axes={"input_ids": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "tokens"},
                          "embedding": {0: "batch"}},
            opset_version=OPSET, dynamo=False,
        )  # fmt: skip
    if quantize:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        logging.getLogger().disabled, was = True, logging.getLogger().disabled  # it warns about pre-processing
        try:
            quantize_dynamic(str(fp32), str(out / MODEL_FILE), weight_type=QuantType.QInt8, per_channel=True)
        finally:
            logging.getLogger().disabled = was
        fp32.unlink()
    else:
        fp32.rename(out / MODEL_FILE)


class OnnxQueryEncoder:
    """Embeds questions with the exported graph: ``tokenizers`` + ONNX Runtime, one intra-op thread.

    Same interface as ``Encoder.encode_queries`` (float32, L2-normalised rows of width :attr:`dim`); safe to
    call from several threads (ONNX Runtime sessions are; the Rust tokenizer is guarded by a lock).
    """

    def __init__(self, folder: Path, *, query_prefix: str, max_seq_length: int, name: str = "",
                 threads: int = 1) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.folder = folder
        self.name = name
        self.query_prefix = query_prefix
        self.quantized = bool(json.loads((folder / STAMP_FILE).read_text(encoding="utf-8")).get("quantized"))
        self._tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self._tokenizer.enable_truncation(max_length=max_seq_length)
        pad_id = self._pad_id(folder)
        self._tokenizer.enable_padding(pad_id=pad_id)
        self._tok_lock = threading.Lock()
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        # idle worker threads must not spin on the cores the lexical channel and the web server need
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session = ort.InferenceSession(str(folder / MODEL_FILE), options, providers=["CPUExecutionProvider"])
        self.dim = int(self.encode_queries(["x"]).shape[1])

    @staticmethod
    def _pad_id(folder: Path) -> int:
        from tokenizers import Tokenizer

        pad = "<pad>"
        for name in ("special_tokens_map.json", "tokenizer_config.json"):
            path = folder / name
            if path.is_file():
                value = json.loads(path.read_text(encoding="utf-8")).get("pad_token")
                if isinstance(value, dict):
                    value = value.get("content")
                if isinstance(value, str):
                    pad = value
                    break
        token_id = Tokenizer.from_file(str(folder / "tokenizer.json")).token_to_id(pad)
        return int(token_id) if token_id is not None else 0

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, getattr(self, "dim", 0)), dtype=np.float32)
        with self._tok_lock:
            batch = self._tokenizer.encode_batch([self.query_prefix + t for t in texts])
        ids = np.array([e.ids for e in batch], dtype=np.int64)
        mask = np.array([e.attention_mask for e in batch], dtype=np.int64)
        (vectors,) = self._session.run(None, {"input_ids": ids, "attention_mask": mask})
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def __repr__(self) -> str:
        return f"OnnxQueryEncoder({self.name!r}, dim={self.dim}, int8={self.quantized})"


def load_query_encoder(name: str, cache_dir: Path, *, quantize: bool = True, progress: bool = True,
                       max_seq_length: int | None = None) -> OnnxQueryEncoder:  # fmt: skip
    """The ONNX question encoder for model ``name`` (exported on first use). Raises OnnxExportError when the
    model's pipeline cannot be exported."""
    from bot.retrieval.embedding_model import BUNDLED_PREFIX, QUERY_MAX_SEQ_LENGTH, QUERY_PREFIX, resolve_model

    os.environ["HF_HUB_OFFLINE"] = "1"
    path = Path(resolve_model(name, cache_dir))
    folder = export(path, cache_dir, quantize=quantize, progress=progress)
    prompts: dict[str, str] = {}
    st_config = path / "config_sentence_transformers.json"
    if st_config.is_file():
        prompts = json.loads(st_config.read_text(encoding="utf-8")).get("prompts") or {}
    prefix = prompts.get("query") or (
        QUERY_PREFIX if name.startswith(BUNDLED_PREFIX) or "e5" in path.name.lower() else ""
    )
    limit = _pipeline(path)["max_seq_length"] or 512
    return OnnxQueryEncoder(folder, query_prefix=prefix, name=name,
                            max_seq_length=min(max_seq_length or QUERY_MAX_SEQ_LENGTH, limit))  # fmt: skip


def load_question_encoder(settings: Settings, progress: bool = True) -> OnnxQueryEncoder | Encoder:
    """The encoder the chat path uses for questions, as configured (``embedding_runtime``). ONNX when the
    model's pipeline can be exported, otherwise (logged) the sentence-transformers encoder."""
    from bot.retrieval.embedding_model import load_encoder

    name = settings.question_model or settings.embedding_model
    if settings.embedding_runtime == "onnx":
        try:
            return load_query_encoder(name, settings.cache_dir, quantize=settings.embedding_quantize,
                                      progress=progress)  # fmt: skip
        except OnnxExportError as exc:
            logger.warning("ONNX question encoder unavailable (%s); using sentence-transformers", exc)
    return load_encoder(name, settings.cache_dir, quantize=settings.embedding_quantize)


def passage_encoder(settings: Settings, questions: OnnxQueryEncoder | Encoder) -> Encoder | None:
    """The question encoder, when it may also embed the passages of an index being built (a sentence-transformers
    encoder of ``embedding_model``); None otherwise (the index loads ``embedding_model`` itself if it must build)."""
    from bot.retrieval.embedding_model import Encoder

    return questions if isinstance(questions, Encoder) and not settings.question_model else None


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    from bot.config import get_settings
    from bot.retrieval.embedding_model import BENCH_QUERIES

    parser = argparse.ArgumentParser(prog="python -m bot.retrieval.onnx_encoder", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    exp = sub.add_parser("export", help="export the configured model's question encoder")
    exp.add_argument("--no-quantize", action="store_true")
    bench = sub.add_parser("bench", help="time one question at a time and compare with the torch encoder")
    bench.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args(argv)
    settings = get_settings()
    if args.command == "export":
        folder = export(Path(_resolved(settings)), settings.cache_dir, quantize=not args.no_quantize)
        print(folder)
        return 0
    from bot.retrieval.embedding_model import load_encoder

    report = {}
    reference = load_encoder(settings.embedding_model, settings.cache_dir, quantize=False).encode_queries(BENCH_QUERIES)
    for quantize in (True, False):
        enc = load_query_encoder(settings.embedding_model, settings.cache_dir, quantize=quantize)
        enc.encode_queries(BENCH_QUERIES[:2])
        started = time.process_time()
        for _ in range(args.rounds):
            for q in BENCH_QUERIES:
                enc.encode_queries([q])
        cpu_ms = (time.process_time() - started) * 1000 / (args.rounds * len(BENCH_QUERIES))
        cos = np.sum(enc.encode_queries(BENCH_QUERIES) * reference, axis=1)
        report["int8" if quantize else "fp32"] = {
            "cpu_ms_per_question": round(cpu_ms, 2), "cosine_to_torch_fp32_mean": round(float(cos.mean()), 5),
            "cosine_to_torch_fp32_min": round(float(cos.min()), 5),
        }  # fmt: skip
    print(json.dumps(report, indent=2))
    return 0


def _resolved(settings: Settings) -> str:
    from bot.retrieval.embedding_model import resolve_model

    return resolve_model(settings.embedding_model, settings.cache_dir)


if __name__ == "__main__":  # pragma: no cover
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    raise SystemExit(main())
