"""Telegram handlers: thin adapters between python-telegram-bot and knowledge.Assistant.

Each module has `register(application, deps)`; adding a feature is one line in
MODULES. Order matters only within a handler group: flood runs first (group -1),
commands and buttons before free text, errors last.
"""

from __future__ import annotations

from telegram.ext import Application

from handlers import (
    commands,
    errors,
    feedback,
    flood,
    inline,
    learning,
    media,
    questions,
    selfcheck,
    staff,
    subscriptions,
)
from handlers.common import SERVICES_KEY, Services

# learning before questions: a staff member's typed not-covered answer is not a question.
MODULES = (flood, learning, selfcheck, commands, feedback, questions, inline, media, subscriptions, staff, errors)


def register_all(application: Application, deps: Services) -> None:
    application.bot_data[SERVICES_KEY] = deps
    for module in MODULES:
        module.register(application, deps)


__all__ = ["MODULES", "Services", "register_all"]
