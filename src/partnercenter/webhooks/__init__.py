"""Webhooks: partners register a URL and event names; events are delivered signed."""
