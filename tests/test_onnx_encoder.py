"""The ONNX question encoder: exported once from the bundled model, faithful to it, used by the chat path."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bot.retrieval import embedding_model as em
from bot.retrieval import onnx_encoder as ox

QUESTIONS = [
    "lam lai cccd o dau",
    "Làm giấy khai sinh cho con thì cần mang theo những giấy gì vậy?",
    "Mất bằng lái xe máy thì làm lại ở đâu, hết bao nhiêu tiền?",
    "chong toi la nguoi Han Quoc, dang ky ket hon o dau",
    "Thời tiết Hà Nội ngày mai thế nào?",
]
TITLES = [
    "Cấp lại thẻ căn cước",
    "Thủ tục đăng ký khai sinh",
    "Cấp lại giấy phép lái xe",
    "Thủ tục đăng ký kết hôn có yếu tố nước ngoài",
    "Cấp giấy phép xây dựng mới đối với nhà ở riêng lẻ",
]


@pytest.fixture(scope="module")
def cache_dir() -> Path:
    from bot.config import Settings

    return Settings().cache_dir  # the machine's model cache (built by the install; rebuilt here if missing)


@pytest.fixture(scope="module")
def torch_fp32(cache_dir: Path) -> em.Encoder:
    return em.load_encoder(em.DEFAULT_MODEL_NAME, cache_dir, quantize=False)


@pytest.fixture(scope="module")
def onnx_int8(cache_dir: Path) -> ox.OnnxQueryEncoder:
    return ox.load_query_encoder(em.DEFAULT_MODEL_NAME, cache_dir, quantize=True, progress=False)


def test_int8_question_vectors_stay_close_to_the_float32_model(onnx_int8: ox.OnnxQueryEncoder, torch_fp32) -> None:
    got = onnx_int8.encode_queries(QUESTIONS)
    want = torch_fp32.encode_queries(QUESTIONS)
    assert got.shape == (len(QUESTIONS), 384) and got.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-4)
    assert float(np.min(np.sum(got * want, axis=1))) > 0.99


def test_int8_questions_rank_titles_as_the_float32_model_does(onnx_int8, torch_fp32) -> None:
    titles = torch_fp32.encode_passages(TITLES)
    for i, question in enumerate(QUESTIONS[:4]):
        fast = onnx_int8.encode_queries([question]) @ titles.T
        slow = torch_fp32.encode_queries([question]) @ titles.T
        assert int(np.argmax(fast)) == int(np.argmax(slow)) == i, question


def test_a_padded_batch_agrees_with_one_question_at_a_time(onnx_int8: ox.OnnxQueryEncoder) -> None:
    # int8 activations are scaled per batch, so padding moves vectors a little; the mask keeps them close
    batch = onnx_int8.encode_queries(QUESTIONS)
    single = np.vstack([onnx_int8.encode_queries([q]) for q in QUESTIONS])
    assert float(np.min(np.sum(batch * single, axis=1))) > 0.995


def test_float32_export_reproduces_the_torch_model(cache_dir: Path, torch_fp32) -> None:
    fp32 = ox.load_query_encoder(em.DEFAULT_MODEL_NAME, cache_dir, quantize=False, progress=False)
    np.testing.assert_allclose(fp32.encode_queries(QUESTIONS), torch_fp32.encode_queries(QUESTIONS), atol=2e-4)
    single = np.vstack([fp32.encode_queries([q]) for q in QUESTIONS])
    np.testing.assert_allclose(fp32.encode_queries(QUESTIONS), single, atol=1e-5)  # padding is masked out


def test_the_export_is_cached_and_stamped(cache_dir: Path, onnx_int8: ox.OnnxQueryEncoder) -> None:
    model_dir = em.resolve_model(em.DEFAULT_MODEL_NAME, cache_dir)
    folder = ox.export(model_dir, cache_dir, quantize=True, progress=False)
    assert folder == onnx_int8.folder
    stamp = json.loads((folder / ox.STAMP_FILE).read_text())
    assert stamp["quantized"] is True and stamp["export_version"] == ox.EXPORT_VERSION


def test_empty_input_gives_an_empty_matrix(onnx_int8: ox.OnnxQueryEncoder) -> None:
    assert onnx_int8.encode_queries([]).shape == (0, 384)


def test_a_folder_that_is_not_a_sentence_transformers_model_is_refused(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ox.OnnxExportError, match="modules.json"):
        ox.export(tmp_path, tmp_path / "cache", quantize=True, progress=False)


def test_unsupported_pooling_is_refused(tmp_path: Path) -> None:
    (tmp_path / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    ]))  # fmt: skip
    (tmp_path / "1_Pooling").mkdir()
    (tmp_path / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode_cls_token": True}))
    with pytest.raises(ox.OnnxExportError, match="mean pooling"):
        ox.export(tmp_path, tmp_path / "cache", quantize=True, progress=False)


def test_the_configured_runtime_picks_the_encoder(cache_dir: Path, tmp_path: Path) -> None:
    from bot.config import Settings

    onnx = ox.load_question_encoder(Settings(cache_dir=cache_dir, embedding_runtime="onnx"), progress=False)
    assert isinstance(onnx, ox.OnnxQueryEncoder)
    torch_backed = ox.load_question_encoder(Settings(cache_dir=cache_dir, embedding_runtime="torch"), progress=False)
    assert isinstance(torch_backed, em.Encoder)
