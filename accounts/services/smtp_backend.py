"""Django's SMTP backend, with STARTTLS only when the server offers it (as New API's Go mailer):
a plain relay on port 587 or 2525 works, a server that offers STARTTLS is always upgraded."""

from __future__ import annotations

import smtplib
from typing import Any

from django.core.mail.backends.smtp import EmailBackend


class _OpportunisticSMTP(smtplib.SMTP):
    def starttls(self, *args: Any, **kwargs: Any) -> tuple[int, bytes]:
        self.ehlo_or_helo_if_needed()
        if not self.has_extn("starttls"):
            return 220, b"STARTTLS not offered: staying in plain text"
        return super().starttls(*args, **kwargs)


class OpportunisticTLSBackend(EmailBackend):
    @property
    def connection_class(self) -> type[smtplib.SMTP]:
        return smtplib.SMTP_SSL if self.use_ssl else _OpportunisticSMTP
