"""Development and demo tools, not used in production: a loopback feed server and an SMTP sink
(aiosmtpd, installed with the ``dev``/``demo`` extra)."""
