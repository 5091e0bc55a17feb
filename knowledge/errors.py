"""The one error a broken knowledge-base file raises."""

from __future__ import annotations


class KnowledgeError(Exception):
    """A knowledge-base file is unusable; names the file, entry and field.

    The message is meant for office staff, so it never carries a traceback.
    """

    def __init__(self, file: str, message: str, entry: str | None = None, field: str | None = None):
        self.file = file
        self.entry = entry
        self.field = field
        self.message = message
        where = file
        if entry is not None:
            where += f"，条目 {entry}"
        if field is not None:
            where += f"，字段 {field}"
        super().__init__(f"{where}：{message}")
