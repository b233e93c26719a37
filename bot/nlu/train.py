"""Train the Rasa model (NLU and dialogue): ``python -m bot train``.

Training takes minutes, so it is skipped when nothing it depends on changed: the fingerprint of config.yml,
nlu_data/ (hand-written and generated data, domain, rules, stories), the code of bot/nlu and bot/text and the
domain lexicon is stored beside the model (``<data_dir>/models/model.json``) and compared before training.
``--force`` retrains anyway. The model is ``<data_dir>/models/assistant.tar.gz``, replaced only when training
succeeds.
"""

from __future__ import annotations

import json
import logging
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

from bot.config import PROJECT_DIR, Settings
from bot.knowledge.store import fingerprint

__all__ = ["MODEL_NAME", "TrainedModel", "model_fingerprint", "quiet_rasa", "train_model", "training_files"]

MODEL_NAME = "assistant"
_STAMP = "model.json"


@dataclass(frozen=True)
class TrainedModel:
    path: Path  # the model archive
    fingerprint: str
    trained: bool  # False when the existing model was up to date
    seconds: float  # training time (of this run, or of the run that made the model)


def model_fingerprint(project_dir: Path = PROJECT_DIR, knowledge_dir: Path | None = None) -> str:
    """Hash of everything the trained model depends on (see the module docstring)."""
    lexicon = (knowledge_dir or project_dir / "knowledge") / "lexicon.yml"
    data = fingerprint(project_dir / "config.yml", project_dir / "nlu_data", lexicon)
    code = fingerprint(project_dir / "bot" / "nlu", project_dir / "bot" / "text", pattern="*.py")
    return data + code


def training_files(project_dir: Path = PROJECT_DIR) -> list[str]:
    """The training data under nlu_data/ (NLU, generated lookups, rules, stories), without the domain:
    Rasa reads a domain found among the training files a second time and warns of duplicated responses."""
    return sorted(str(p) for p in (project_dir / "nlu_data").rglob("*.yml") if p.name != "domain.yml")


def quiet_rasa() -> None:
    """No telemetry (it would call home), no TensorFlow banner, no cache of graph outputs under the cwd, and
    none of the two warnings Rasa gives for this project's choices on every run."""
    os.environ.setdefault("RASA_TELEMETRY_ENABLED", "false")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # our fingerprint decides when to train, and then everything is retrained: Rasa's cache would only
    # replay outputs of components whose code may have changed without Rasa noticing
    os.environ.setdefault("RASA_MAX_CACHE_SIZE", "0")
    # the lookup table is used by bot.nlu.components.ProcedureNameExtractor, which Rasa does not know of
    warnings.filterwarnings("ignore", message="You have defined training data consisting of lookup tables")
    warnings.filterwarnings("ignore", message="Slot auto-fill has been removed")  # raised unconditionally
    import structlog  # Rasa logs every parsed message at debug level to stdout unless told otherwise

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))


def train_model(
    settings: Settings,
    *,
    force: bool = False,
    progress: bool = True,
    project_dir: Path = PROJECT_DIR,
) -> TrainedModel:
    """Train into ``<data_dir>/models/`` unless the stored fingerprint matches (see the module docstring)."""
    say = print if progress else (lambda *a, **k: None)
    models_dir = settings.data_dir / "models"
    model_path = models_dir / f"{MODEL_NAME}.tar.gz"
    stamp_path = models_dir / _STAMP
    current = model_fingerprint(project_dir, settings.knowledge_dir)
    if not force and model_path.exists() and stamp_path.exists():
        stamp = json.loads(stamp_path.read_text(encoding="utf-8"))
        if stamp.get("fingerprint") == current:
            say(f"Model up to date (config, nlu_data and bot/nlu unchanged): {model_path}")
            return TrainedModel(model_path, current, False, float(stamp.get("seconds", 0.0)))

    quiet_rasa()
    say("Training the Rasa model (NLU + dialogue); TensorFlow starts first (~40 s)…")
    started = time.monotonic()
    from rasa.model_training import train

    models_dir.mkdir(parents=True, exist_ok=True)
    building = models_dir / "building"
    result = train(
        domain=str(project_dir / "nlu_data" / "domain.yml"),
        config=str(project_dir / "config.yml"),
        training_files=training_files(project_dir),
        output=str(building),
        force_training=True,
        fixed_model_name=MODEL_NAME,
    )
    if result.code != 0 or not result.model:
        raise RuntimeError(f"Rasa training failed (code {result.code})")
    Path(result.model).replace(model_path)  # the old model stays until the new one is complete
    building.rmdir()
    seconds = time.monotonic() - started
    stamp_path.write_text(
        json.dumps({"fingerprint": current, "model": model_path.name, "seconds": round(seconds, 1)}, indent=2),
        encoding="utf-8",
    )
    say(f"Trained in {seconds:.0f} s: {model_path}")
    return TrainedModel(model_path, current, True, seconds)
