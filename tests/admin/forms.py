"""Submit admin forms the way a browser does: read the rendered form's fields and values, change
some, post them all (inline management forms included)."""

from __future__ import annotations

from html.parser import HTMLParser


class _FormReader(HTMLParser):
    """The values a browser would submit for the page's main form (``id`` ends in ``_form``)."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.in_form = False
        self.fields: list[tuple[str, str]] = []
        self._select: str | None = None
        self._select_value: str | None = None
        self._first_option: str | None = None
        self._textarea: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form" and (a.get("id") or "").endswith("_form"):
            self.in_form = True
        if not self.in_form:
            return
        name = a.get("name")
        if tag == "input" and name:
            kind = (a.get("type") or "text").lower()
            if kind in ("submit", "button", "image", "file", "reset"):
                return
            if kind in ("checkbox", "radio") and "checked" not in a:
                return
            self.fields.append((name, a.get("value", "on" if kind == "checkbox" else "")))
        elif tag == "select" and name:
            self._select, self._select_value, self._first_option = name, None, None
        elif tag == "option" and self._select:
            value = a.get("value")
            if self._first_option is None:
                self._first_option = value if value is not None else ""
            if "selected" in a:
                self._select_value = value if value is not None else ""
        elif tag == "textarea" and name:
            self._textarea, self._text = name, []

    def handle_data(self, data):
        if self._textarea is not None:
            self._text.append(data)

    def handle_endtag(self, tag):
        if tag == "form":
            self.in_form = False
        elif tag == "select" and self._select:
            value = self._select_value if self._select_value is not None else (self._first_option or "")
            self.fields.append((self._select, value))
            self._select = None
        elif tag == "textarea" and self._textarea is not None:
            text = "".join(self._text)
            self.fields.append((self._textarea, text[1:] if text.startswith("\n") else text))
            self._textarea = None


def form_values(html: str) -> dict[str, str]:
    reader = _FormReader()
    reader.feed(html)
    values: dict[str, str] = {}
    for name, value in reader.fields:
        values.setdefault(name, value)
    return values


def submit(client, url: str, **changes):
    """GET the admin form at ``url``, change some fields, POST it; returns the response."""
    page = client.get(url)
    assert page.status_code == 200, (url, page.status_code)
    data = form_values(page.content.decode())
    data.update({name: value for name, value in changes.items()})
    data.setdefault("_save", "Save")
    return client.post(url, data)


def form_errors(response) -> dict:
    """The main form's errors of an admin add/change page answered with the form again."""
    assert response.status_code == 200, f"expected the form back with errors, got {response.status_code}"
    return dict(response.context["adminform"].form.errors)


def inline_errors(response) -> list:
    """Every inline form's errors (field errors and ``__all__``) of an admin page answered with the
    form again."""
    assert response.status_code == 200, f"expected the form back with errors, got {response.status_code}"
    out = []
    for inline in response.context["inline_admin_formsets"]:
        out.extend(form.errors for form in inline.formset.forms if form.errors)
    return out
