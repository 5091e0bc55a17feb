"""Answering a question: normalise -> retrieve -> score -> decide -> compose.

Each stage is a module of its own; `engine.Engine` runs them in that order.
"""
