"""Domain errors: what a service raises when it refuses an operation.

Services and selectors raise these, never an API framework's exceptions, so the same call can sit
behind any API family, the admin, a task or a command. Each API family renders them in its own
error shape (``tenants.api.errors.normalize``); the admin shows them as messages
(``tenants.admin_errors``).

- ``InvalidInput``: the input is wrong; it names each field (or parameter) and what is wrong with
  it (400).
- ``Conflict``: the input is well formed but the current state refuses it (409): the time is taken,
  the object is still in use.
- ``NotFound``: the object does not exist, or belongs to another organization (404).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping


class DomainError(Exception):
    default_message = "The operation is not possible."

    def __init__(self, message: str | None = None):
        self.message = message or self.default_message
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


class InvalidInput(DomainError):
    """``fields`` maps each offending field to its messages, in the order they were found."""

    default_message = "Invalid input."

    def __init__(self, fields: Mapping[str, str | Iterable[str]] | None = None, *, message: str | None = None):
        self.fields: dict[str, list[str]] = {
            name: [messages] if isinstance(messages, str) else list(messages) for name, messages in (fields or {}).items()
        }
        if message is None and self.fields:
            name, messages = next(iter(self.fields.items()))
            message = f"{name}: {messages[0]}" if messages else None
        super().__init__(message)

    @property
    def errors(self) -> list[dict]:
        """``[{"field", "message"}]``, one item per message."""
        return [{"field": name, "message": text} for name, messages in self.fields.items() for text in messages]


class Conflict(DomainError):
    default_message = "The request conflicts with the current state."


class NotFound(DomainError):
    default_message = "Not found."
