"""Channel connectors: the web chat page, Telegram, Zalo OA (and, later, the phone line) on one core."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.config import Settings
    from bot.service import Assistant
    from connectors.core import Channel, ChannelHub

log = logging.getLogger(__name__)


def build_hub(assistant: Assistant, settings: Settings) -> ChannelHub:
    """The hub with every channel whose secrets are configured (none: the web chat and API only)."""
    from connectors.core import ChannelHub, ChannelStore

    channels: list[Channel] = []
    if settings.telegram_token is not None:
        from connectors.telegram import TelegramChannel

        if settings.telegram_webhook_secret is None:
            log.warning("telegram: VNA_TELEGRAM_WEBHOOK_SECRET is not set; the webhook refuses every update "
                        "(polling with `python -m bot telegram-poll` still works)")
        channels.append(TelegramChannel(settings))
    if any(getattr(settings, n) is not None for n in ("zalo_app_id", "zalo_oa_secret", "zalo_app_secret",
                                                     "zalo_access_token", "zalo_refresh_token")):
        from bot.keys import TokenCipher
        from connectors.zalo import ZaloChannel

        channels.append(ZaloChannel(settings, ChannelStore(assistant.store.db, TokenCipher(settings))))
    return ChannelHub(assistant, settings, channels)
