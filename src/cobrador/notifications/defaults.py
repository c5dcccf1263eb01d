"""The templates shipped with cobrador: one TOML file per locale in default_templates/.

They are data read here, so they stay out of templates/ (Django's template loader shares one namespace
across every app's templates/)."""

import functools
import tomllib
from dataclasses import dataclass
from pathlib import Path

from cobrador.notifications import registry
from cobrador.notifications.formatting import LOCALES

DEFAULTS_DIR = Path(__file__).parent / "default_templates"


@dataclass(frozen=True)
class TemplateParts:
    subject: str
    html_body: str
    text_body: str


@functools.cache
def _locale_file(locale: str) -> dict:
    with open(DEFAULTS_DIR / f"{locale}.toml", "rb") as f:
        return tomllib.load(f)


@functools.cache
def default_template(type_name: str, locale: str) -> TemplateParts:
    """The shipped template for (type, locale): the type's content inside the locale's layout."""
    data = _locale_file(locale)
    layout, entry = data["layout"], data[type_name]
    button = layout["button"].replace("%LABEL%", entry["button"]) if entry.get("button") else ""
    content = entry["html"].strip().replace("%BUTTON%", button)
    return TemplateParts(subject=entry["subject"].strip(),
                         html_body=layout["html"].replace("%CONTENT%", content),
                         text_body=entry["text"].strip() + "\n" + layout["text_footer"])


def check_defaults() -> list[str]:
    """Every registered type has a default in every locale (a test calls this)."""
    missing = []
    for locale in LOCALES:
        data = _locale_file(locale)
        missing += [f"{locale}:{name}" for name in registry.TYPES if name not in data]
    return missing
