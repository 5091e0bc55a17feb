"""The assistant's core: knowledge base, answering engine and self-check.

Nothing in this package imports Telegram: the console and the Telegram
handlers are two front doors onto the same plain-Python core.
"""
