"""Adaptors: one module per provider wire format. registry.py maps each channel type to its adaptor."""

from __future__ import annotations

from relay.adaptors.registry import adaptor_for, provider_for

__all__ = ["adaptor_for", "provider_for"]
