"""Domain errors in the admin: a refused save or delete becomes a message or a form error.

    from tenants.admin_errors import domain_error_message, form_add_domain_error

    try:
        location_delete(location=obj)
    except DomainError as error:
        domain_error_message(request, error)   # "Cannot delete: ..." at the top of the page
        return

    # in a ModelForm's clean() / an admin's save path, to show InvalidInput on its fields:
    form_add_domain_error(form, error, aliases={"LocationId": "location"})
"""

from __future__ import annotations

from collections.abc import Mapping

from django.contrib import messages

from tenants.errors import DomainError, InvalidInput


def domain_error_text(error: DomainError) -> str:
    """One line for a person: the message, plus every field's messages for invalid input."""
    if isinstance(error, InvalidInput) and error.fields:
        return "; ".join(
            f"{name}: {text}" if name not in ("body", "__all__") else text
            for name, texts in error.fields.items()
            for text in texts
        )
    return error.message


def domain_error_message(request, error: DomainError, *, prefix: str = "") -> None:
    """Show ``error`` as an error message on the next admin page."""
    messages.error(request, f"{prefix}{domain_error_text(error)}")


def form_add_domain_error(form, error: DomainError, *, aliases: Mapping[str, str] | None = None) -> None:
    """Put ``error`` on the form: each InvalidInput field on the form field of that name (or its
    alias: API names such as ``LocationId`` → the model field ``location``); the rest on the form."""
    aliases = aliases or {}
    if not isinstance(error, InvalidInput) or not error.fields:
        form.add_error(None, error.message)
        return
    for name, texts in error.fields.items():
        target = aliases.get(name, name)
        for text in texts:
            if target in form.fields:
                form.add_error(target, text)
            else:
                form.add_error(None, f"{name}: {text}" if name not in ("body", "__all__") else text)
