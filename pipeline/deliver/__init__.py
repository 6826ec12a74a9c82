"""Delivery: rendering (Jinja2 templates), the outbox with leases, the SMTP and webhook senders,
and operator notices."""
