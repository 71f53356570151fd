"""Outgoing email (password reset links). SMTP settings come from the configuration; without
an SMTP host the mail is written to the log (development), and under TESTING it is also kept
in `app.extensions["mail_outbox"]` so tests can read it."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage

from flask import current_app


def send_mail(to: str, subject: str, body: str) -> None:
    config = current_app.config
    message = EmailMessage()
    message["From"] = config["MAIL_FROM"]
    message["To"] = to
    message["Subject"] = subject
    message.set_content(body)
    if config.get("TESTING"):
        current_app.extensions.setdefault("mail_outbox", []).append(message)
    host = config.get("SMTP_HOST")
    if not host:
        current_app.logger.info("mail (no SMTP host configured) to %s: %s\n%s", to, subject, body)
        return
    port = int(config.get("SMTP_PORT") or 587)
    with smtplib.SMTP(host, port, timeout=20) as smtp:
        if config.get("SMTP_STARTTLS", True):
            smtp.starttls(context=ssl.create_default_context())
        if config.get("SMTP_USER"):
            smtp.login(config["SMTP_USER"], config.get("SMTP_PASSWORD") or "")
        smtp.send_message(message)
