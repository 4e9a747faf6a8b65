"""Integrations with training frameworks (imported only on demand)."""
