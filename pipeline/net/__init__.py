"""Network safety shared by everything that connects out: the feed fetcher, the webhook sender and
the SMTP client. Address policy (which hosts may be reached), URL redaction, a pinned and guarded
HTTP transport, a deadline watchdog and bomb-safe bounded decoding."""
