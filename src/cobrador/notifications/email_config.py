"""E-mail settings from the environment (imported by settings.py, so it must not import Django).

COBRADOR_EMAIL_URL=smtp://user:password@host:587?tls=1 sends by SMTP (`?tls=1` STARTTLS, `smtps://` or
`?ssl=1` implicit TLS, `?timeout=` seconds, default 10). Without it, every mail is written as an .eml
file (open it with any mail program) into <data dir>/mails.
"""

from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

FILE_BACKEND = "cobrador.notifications.mail_backends.EmlFileBackend"
SMTP_BACKEND = "django.core.mail.backends.smtp.EmailBackend"


class BadEmailUrl(ValueError):
    pass


def _flag(query: dict, name: str) -> bool:
    return query.get(name, ["0"])[-1].lower() in ("1", "true", "yes", "on")


def mailer_from_url(url: str) -> dict:
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps"):
        raise BadEmailUrl(f"COBRADOR_EMAIL_URL must start with smtp:// or smtps://, not {parts.scheme}://")
    if not parts.hostname:
        raise BadEmailUrl("COBRADOR_EMAIL_URL has no host")
    query = parse_qs(parts.query)
    use_ssl = parts.scheme == "smtps" or _flag(query, "ssl")
    use_tls = not use_ssl and _flag(query, "tls")
    try:
        port = parts.port or (465 if use_ssl else 587 if use_tls else 25)
        timeout = float(query.get("timeout", ["10"])[-1])
    except ValueError as exc:
        raise BadEmailUrl(f"COBRADOR_EMAIL_URL: {exc}") from exc
    return {"BACKEND": SMTP_BACKEND, "OPTIONS": {
        "host": parts.hostname, "port": port, "username": unquote(parts.username or ""),
        "password": unquote(parts.password or ""), "use_tls": use_tls, "use_ssl": use_ssl, "timeout": timeout}}


def mailers_setting(email_url: str, mail_dir: Path) -> dict:
    if email_url:
        return {"default": mailer_from_url(email_url)}
    return {"default": {"BACKEND": FILE_BACKEND, "OPTIONS": {"file_path": str(mail_dir)}}}


def describe(mailers: dict) -> str:
    """Where mail goes, for `cobrador up` to say."""
    default = mailers.get("default", {})
    options = default.get("OPTIONS", {})
    if default.get("BACKEND") == FILE_BACKEND:
        return f"written as .eml files to {options.get('file_path')} (set COBRADOR_EMAIL_URL to send by SMTP)"
    if default.get("BACKEND") == SMTP_BACKEND:
        return f"SMTP {options.get('host')}:{options.get('port')}"
    return str(default.get("BACKEND"))
