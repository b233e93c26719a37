"""Command line: `python -m bot ask|serve|callbot|actions|telegram-poll|kpi-consumer|demo-data|db|purge|build-index|eval|train|learn` (see README.md)."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
from pathlib import Path


def cmd_ask(args: argparse.Namespace) -> int:
    import asyncio
    import uuid

    from bot.config import get_settings
    from bot.domain import Reply
    from bot.service import Assistant

    # Rasa (when on) prints its own progress to stdout: keep stdout for the answers
    with contextlib.redirect_stdout(sys.stderr):
        assistant = Assistant(get_settings(), progress=True)
    run = uuid.uuid4().hex[:8]

    def show(reply: Reply) -> None:
        print(json.dumps(reply.contract(), ensure_ascii=False) if args.json else reply.reply, flush=True)

    async def batch(lines: list[str]) -> None:
        for number, line in enumerate(lines, 1):
            if line.strip():  # a fresh conversation per question
                show((await assistant.turn(f"cli-{run}-{number}", line, "cli")).reply)

    async def interactive() -> None:
        # one conversation: the procedure being discussed, offered choices and ratings carry over
        print("Trợ lý thủ tục hành chính — gõ câu hỏi, Enter để gửi, Ctrl+D hoặc 'thoát' để kết thúc.")
        while True:
            try:
                line = input("Bạn: ")
            except (EOFError, KeyboardInterrupt):
                print()
                return
            if line.strip().lower() in {"thoát", "thoat", "exit", "quit"}:
                return
            if not line.strip():
                continue
            turn = await assistant.turn(f"cli-{run}", line, "cli")
            if args.json:
                show(turn.reply)
                continue
            print(f"Trợ lý: {turn.reply.reply}")
            for button in turn.buttons:  # titles say what to type: "2. Cấp lại…", "5 - Rất hài lòng", "Có…"
                print(f"  • {button.title}")
            print()

    if args.batch:
        asyncio.run(batch(Path(args.batch).read_text(encoding="utf-8", errors="replace").splitlines()))
        return 0
    question = " ".join(args.question)
    if question:
        asyncio.run(batch([question]))
        return 0
    asyncio.run(interactive())
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from bot.config import get_settings

    settings = get_settings()
    workers = args.workers or settings.resolved_workers
    # ws="none": the API has no websocket route, and uvicorn's websocket module does not import with the
    # websockets 10.4 that rasa's sanic pins (docs/architecture.md, "Dependencies").
    # proxy_headers=False: uvicorn would otherwise believe X-Forwarded-For from 127.0.0.1 and rewrite the client
    # address itself; VNA_TRUSTED_PROXIES is the one rule for which proxies are believed (bot/ratelimit.py).
    options = {"host": args.host, "port": args.port, "log_level": "info", "access_log": False, "ws": "none",
               "proxy_headers": False}
    if workers <= 1:
        from bot.api import create_app
        from bot.service import Assistant

        assistant = Assistant(settings, progress=True)  # builds the index first, with a progress bar
        uvicorn.run(create_app(settings, assistant), **options)
        return 0
    # Several worker processes (docs/benchmarks.md: one per core). What they share — the exported question
    # encoder and the index — is prepared first, in a child process, so the workers start in seconds without
    # racing to build it, and this supervising process stays small (it only watches the workers).
    import multiprocessing

    from bot.prepare import prepare_shared

    child = multiprocessing.get_context("spawn").Process(target=prepare_shared, name="prepare")
    child.start()
    child.join()
    if child.exitcode != 0:
        print("serve: preparing the index or the model failed (see above)", file=sys.stderr)
        return 1
    uvicorn.run("bot.api:create_app", factory=True, workers=workers, **options)
    return 0


def cmd_actions(args: argparse.Namespace) -> int:
    """The custom actions as a separate rasa-sdk server (for VNA_ACTION_ENDPOINT; `serve` runs them in-process)."""
    os.environ.setdefault("SANIC_HOST", args.host)
    from rasa_sdk.endpoint import run

    from bot.config import get_settings
    from bot.dialogue import actions
    from bot.service import Assistant

    # the engine is loaded before the first call, not during it; the actions never load it themselves
    actions.bind(Assistant(get_settings(), progress=False, dialogue=False))
    print(f"actions: listening on http://{args.host}:{args.port}/webhook", file=sys.stderr, flush=True)
    run("bot.dialogue.actions", port=args.port, cors_origins=None)
    return 0


def cmd_telegram_poll(args: argparse.Namespace) -> int:
    """Development: answer a Telegram bot by polling getUpdates (no public URL needed; removes the webhook)."""
    import asyncio

    from bot.config import get_settings
    from bot.service import Assistant
    from connectors.core import ChannelHub
    from connectors.telegram import TelegramChannel

    settings = get_settings()
    if settings.telegram_token is None:
        print("telegram-poll: set VNA_TELEGRAM_TOKEN (environment or .env) first; see docs/channels.md",
              file=sys.stderr)
        return 2
    with contextlib.redirect_stdout(sys.stderr):
        assistant = Assistant(settings, progress=True)

    async def run() -> None:
        channel = TelegramChannel(settings)
        hub = ChannelHub(assistant, settings, [channel])
        await hub.start()
        print("telegram-poll: answering messages; Ctrl+C to stop", file=sys.stderr, flush=True)
        try:
            await channel.poll(hub)
        finally:
            await hub.stop()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())
    return 0


def cmd_callbot(args: argparse.Namespace) -> int:
    """The phone line alone: the SIP endpoint and the assistant, no HTTP (docs/callbot.md)."""
    import asyncio

    from bot.config import get_settings
    from bot.service import Assistant
    from connectors.callbot import Callbot

    overrides = {k: v for k, v in (("callbot_host", args.host), ("callbot_port", args.port)) if v is not None}
    settings = get_settings().model_copy(update=overrides)
    with contextlib.redirect_stdout(sys.stderr):
        assistant = Assistant(settings, progress=True)

    async def run() -> None:
        bot = Callbot(assistant, settings)
        await bot.start()
        print(f"callbot: SIP on udp://{settings.callbot_host}:{bot.port}; Ctrl+C to stop", file=sys.stderr, flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await bot.stop()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())
    return 0


def cmd_kpi_consumer(args: argparse.Namespace) -> int:
    """Write the conversation events of VNA_EVENT_BROKER_URL's queue to the KPI store until SIGTERM (bot/events.py)."""
    from bot.config import get_settings
    from bot.conversation import ConversationStore
    from bot.events import EventConsumer, check_url, run_consumer

    settings = get_settings()
    if settings.event_broker_url is None:
        print("kpi-consumer: VNA_EVENT_BROKER_URL is not set (e.g. amqp://user:password@127.0.0.1:5672/); without a "
              "broker the events are written directly and there is nothing to consume", file=sys.stderr)
        return 2
    if args.prefetch < 1 or args.concurrency < 1:
        print("kpi-consumer: --prefetch and --concurrency must be at least 1", file=sys.stderr)
        return 2
    try:
        check_url(settings.event_broker_url.get_secret_value())
    except ValueError as exc:
        print(f"kpi-consumer: {exc}", file=sys.stderr)
        return 2
    logging.getLogger("bot.events").setLevel(logging.INFO)  # progress and counts, whatever VNA_LOG_LEVEL says
    store = ConversationStore(settings.resolved_database_url)  # no publisher: this process writes
    consumer = EventConsumer(settings.event_broker_url.get_secret_value(), store.apply,
                             queue=settings.event_broker_queue, prefetch=args.prefetch,
                             concurrency=args.concurrency)
    run_consumer(consumer)  # logs its counts as it goes and when it stops
    return 0


def cmd_demo_data(args: argparse.Namespace) -> int:
    """Fill the dashboard with simulated conversations (marked as such), or remove them."""
    from bot.config import get_settings

    settings = get_settings()
    if args.remove:
        from bot.conversation import ConversationStore
        from bot.demo import remove

        removed = remove(settings, ConversationStore(settings.resolved_database_url).db)
        print(json.dumps({"removed": removed}, ensure_ascii=False))
        return 0
    from bot.demo import replay
    from bot.service import Assistant

    with contextlib.redirect_stdout(sys.stderr):
        assistant = Assistant(settings, progress=True)
    counts = replay(assistant, days=args.days, seed=args.seed)
    print(json.dumps({"simulated": counts, "remove_with": "python -m bot demo-data --remove"}, ensure_ascii=False))
    return 0


def cmd_db(args: argparse.Namespace) -> int:
    """Schema migrations of the assistant's database (applied automatically at start; this is for operators)."""
    from sqlalchemy import create_engine

    from bot.config import get_settings
    from bot.db import current, head, migrate

    settings = get_settings()
    engine = create_engine(settings.resolved_database_url, future=True)
    if args.action == "upgrade":
        migrate(engine)
    print(json.dumps({"database": engine.url.render_as_string(hide_password=True), "current": current(engine),
                      "head": head()}))
    return 0


def cmd_purge(args: argparse.Namespace) -> int:
    """Delete or anonymise personal data older than the retention period (docs/operations.md, "Retention")."""
    import time
    from datetime import UTC, datetime

    from bot.config import get_settings
    from bot.conversation import ConversationStore
    from bot.retention import PurgeBusy, cutoff_of, purge

    settings = get_settings()
    days = args.days if args.days is not None else settings.retention_days
    now = time.time()
    try:
        cutoff = cutoff_of(settings, now, days)
    except ValueError as exc:
        print(f"purge: {exc}", file=sys.stderr)
        return 2
    store = ConversationStore(settings.resolved_database_url)
    try:
        counts = purge(store.db, settings, now, dry_run=args.dry_run, days=days)
    except PurgeBusy as exc:
        print(f"purge: {exc}; try again later", file=sys.stderr)
        return 1
    finally:
        store.db.dispose()
    print(json.dumps({"days": days, "cutoff": datetime.fromtimestamp(cutoff, UTC).isoformat(timespec="seconds"),
                      "dry_run": args.dry_run, "would_purge" if args.dry_run else "purged": counts}))
    return 0


def cmd_build_index(args: argparse.Namespace) -> int:
    from bot.config import get_settings
    from bot.retrieval.index import build_index

    manifest = build_index(get_settings(), progress=True)
    print(json.dumps(manifest, ensure_ascii=False, indent=2))
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from bot.config import get_settings

    if args.dialogue:
        from bot.dialogue.evaluate import run_dialogue_eval

        return run_dialogue_eval(get_settings(), args)
    from bot.eval import run_eval

    return run_eval(get_settings(), args)


def cmd_train(args: argparse.Namespace) -> int:
    from bot.config import get_settings
    from bot.nlu.train import train_model

    train_model(get_settings(), force=args.force)
    return 0


def cmd_learn(args: argparse.Namespace) -> int:
    """Fit the learned ranking and decision on questions generated from the knowledge (bot/learning)."""
    from bot.config import get_settings
    from bot.learning.train import run_learn

    output = Path(args.output) if args.output else None
    model = run_learn(get_settings(), seed=args.seed, per_procedure=args.per_procedure, limit=args.limit,
                      output=output)
    print(json.dumps(model.info, ensure_ascii=False, indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot", description="Vietnamese administrative procedure assistant")
    sub = parser.add_subparsers(dest="command", required=True)

    ask = sub.add_parser("ask", help="answer a question (no question: interactive chat)")
    ask.add_argument("question", nargs="*")
    ask.add_argument("--json", action="store_true", help="print the JSON contract instead of the reply text")
    ask.add_argument("--batch", metavar="FILE", help="with --json: one question per line, one JSON object per line")
    ask.set_defaults(func=cmd_ask)

    serve = sub.add_parser("serve", help="HTTP API on --port (default 8000)")
    serve.add_argument("--host", default=os.environ.get("VNA_HOST", "127.0.0.1"))
    serve.add_argument("--port", type=int, default=int(os.environ.get("VNA_PORT", "8000")))
    serve.add_argument("--workers", type=int, default=0,
                       help="worker processes (default: VNA_WORKERS, 1; 0 = one per usable core)")
    serve.set_defaults(func=cmd_serve)

    act = sub.add_parser("actions", help="run the custom actions as a separate rasa-sdk server (see VNA_ACTION_ENDPOINT)")
    act.add_argument("--host", default="127.0.0.1")
    act.add_argument("--port", type=int, default=5055)
    act.set_defaults(func=cmd_actions)

    poll = sub.add_parser("telegram-poll", help="development: answer the Telegram bot by polling instead of a webhook")
    poll.set_defaults(func=cmd_telegram_poll)

    phone = sub.add_parser("callbot", help="run the phone line (SIP endpoint) alone, without HTTP")
    phone.add_argument("--host", default=None, help="bind address (default VNA_CALLBOT_HOST, 127.0.0.1)")
    phone.add_argument("--port", type=int, default=None, help="SIP UDP port (default VNA_CALLBOT_PORT, 5080)")
    phone.set_defaults(func=cmd_callbot)

    kpi = sub.add_parser("kpi-consumer",
                         help="write the conversation events queued in RabbitMQ (VNA_EVENT_BROKER_URL) to the KPI store")
    kpi.add_argument("--prefetch", type=int, default=32, help="messages taken from the broker ahead (default 32)")
    kpi.add_argument("--concurrency", type=int, default=4,
                     help="events written at once, each session's in order (default 4)")
    kpi.set_defaults(func=cmd_kpi_consumer)

    demo = sub.add_parser("demo-data", help="replay the development questions with simulated ratings (dashboard demo)")
    demo.add_argument("--remove", action="store_true", help="delete every simulated row instead")
    demo.add_argument("--days", type=int, default=14, help="spread the conversations over this many days")
    demo.add_argument("--seed", type=int, default=7)
    demo.set_defaults(func=cmd_demo_data)

    db = sub.add_parser("db", help="database schema: show the revision, or upgrade it (done at every start anyway)")
    db.add_argument("action", choices=["current", "upgrade"])
    db.set_defaults(func=cmd_db)

    prune = sub.add_parser("purge", help="delete or anonymise personal data older than the retention period")
    prune.add_argument("--days", type=int, default=None,
                       help="retention period in days (default VNA_RETENTION_DAYS, 180)")
    prune.add_argument("--dry-run", action="store_true", help="only count what would be deleted or anonymised")
    prune.set_defaults(func=cmd_purge)

    build = sub.add_parser("build-index", help="(re)build the knowledge index")
    build.set_defaults(func=cmd_build_index)

    ev = sub.add_parser("eval", help="evaluate on the development set (eval/devset)")
    ev.add_argument("--modes", default="lexical,dense,hybrid")
    ev.add_argument("--devset", default="eval/devset")
    ev.add_argument("--report", metavar="FILE", help="also write the markdown table to FILE")
    ev.add_argument("--errors", metavar="FILE", help="write every miss as JSON lines to FILE")
    ev.add_argument("--dialogue", action="store_true",
                    help="through /api/chat with Rasa in the loop, plus the scripted conversations (eval/conversations)")
    ev.set_defaults(func=cmd_eval)

    train = sub.add_parser("train", help="train the Rasa model (skipped when config, nlu_data and bot/nlu are unchanged)")
    train.add_argument("--force", action="store_true", help="retrain even if nothing changed")
    train.set_defaults(func=cmd_train)

    learn = sub.add_parser("learn", help="fit the learned ranking and decision (VNA_LEARNED_RANKING) on generated questions")
    learn.add_argument("--seed", type=int, default=16)
    learn.add_argument("--per-procedure", type=int, default=3,
                       help="generated questions per procedure, twice that for citizens' own (default 3)")
    learn.add_argument("--limit", type=int, default=None, help="only the first N procedures (by code)")
    learn.add_argument("--output", default=None, help="artefact path (default VNA_LEARNED_RANKING_PATH)")
    learn.set_defaults(func=cmd_learn)

    from bot.console.cli import register
    register(sub)
    args = parser.parse_args(argv)
    if args.command == "ask" and args.batch and not args.json:
        parser.error("--batch needs --json")
    logging.basicConfig(level=os.environ.get("VNA_LOG_LEVEL", "WARNING"), stream=sys.stderr)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
