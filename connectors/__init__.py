"""Channel adapters (web chat, Telegram, Zalo OA, phone). Each turns its platform's payload into the common
message model and renders the reply back; the core (`bot.service.Assistant`) never knows the platform.
The HTTP API in `bot.api` is the first channel; the others follow in their own milestones."""
