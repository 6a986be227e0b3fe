"""A provider is declared once: its ChannelType member and its registry entry, nowhere else.

Read from the product's own source (AST): per-type tables outside the registry (dicts or sets keyed
by channel types, or a Provider record built elsewhere) and raw channel type or status numbers in
comparisons are what made adding a provider touch five files. Also checks that the optional adaptor
capabilities are resolved from the Protocols, and that adaptors read no settings store.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from relay.adaptors import adaptor_for
from relay.adaptors.base import (
    NativeClaude,
    NeedsSetup,
    OwnStreamFormat,
    ServesRealtime,
    is_stream_response,
    needs_setup,
    owns_stream_format,
    serves_realtime,
    speaks_claude,
)
from relay.adaptors.registry import PROVIDERS, PROVIDERS_BY_TYPE, REALTIME_TYPES
from relay.channels.types import ChannelType

ROOT = Path(__file__).resolve().parents[2]
APPS = ("newapi_site", "accounts", "billing", "relay", "tasks")
REGISTRY = "relay/adaptors/registry.py"
TYPES = "relay/channels/types.py"
# One API's numbering, renumbered into New API's on import; accounts cannot import relay's names.
ONE_API_IMPORT = "accounts/legacy/"
ENUM_NAMES = {"ChannelType", "T"}
TYPE_NAMES = {"type", "channel_type", "ctype"}
STATUS_NAMES = {"status"}


def product_files() -> list[tuple[str, ast.Module]]:
    out = []
    for app in APPS:
        for path in sorted((ROOT / app).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if "/migrations/" in rel or rel.startswith(ONE_API_IMPORT):
                continue
            out.append((rel, ast.parse(path.read_text(), rel)))
    return out


FILES = product_files()


def _member(node: ast.AST) -> str | None:
    """`ChannelType.GEMINI` / `T.GEMINI` → "GEMINI"."""
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in ENUM_NAMES:
        return node.attr
    return None


def _name(node: ast.AST) -> str:
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Name):
        return node.id
    return ""


def _ints(node: ast.AST) -> list[int]:
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return [node.value]
    if isinstance(node, ast.Tuple | ast.List | ast.Set):
        return [v for elt in node.elts for v in _ints(elt)]
    return []


def declaration_sites(member: ChannelType) -> list[str]:
    """Every place that says something about this channel type on its own account."""
    sites: list[str] = []
    for rel, tree in FILES:
        for node in ast.walk(tree):
            where = f"{rel}:{getattr(node, 'lineno', 0)}"
            if isinstance(node, ast.ClassDef) and node.name == "ChannelType":
                if any(isinstance(s, ast.Assign) and _name(s.targets[0]) == member.name for s in node.body):
                    sites.append(f"{where} (enum member)")
            elif isinstance(node, ast.Call) and _name(node.func) == "Provider" and node.args:
                if _member(node.args[0]) == member.name or _ints(node.args[0]) == [member.value]:
                    sites.append(f"{where} (registry entry)")
            elif isinstance(node, ast.Dict | ast.Set):
                keys = node.keys if isinstance(node, ast.Dict) else node.elts
                if any(k is not None and _member(k) == member.name for k in keys):
                    sites.append(f"{where} (a table keyed by channel type)")
            elif isinstance(node, ast.Assign) and "TYPE" in _name(node.targets[0]).upper():
                value = node.value
                keys = value.keys if isinstance(value, ast.Dict) else [value]
                if any(k is not None and member.value in _ints(k) for k in keys):
                    sites.append(f"{where} (type numbers listed by hand)")
            elif (
                isinstance(node, ast.Assign)
                and rel != TYPES  # the enum member itself, counted above
                and _name(node.targets[0]) == member.name
                and _ints(node.value) == [member.value]
            ):
                sites.append(f"{where} (a constant of its own)")
    return sites


@pytest.mark.parametrize("member", list(ChannelType), ids=lambda m: m.name)
def test_a_provider_is_declared_in_the_registry_only(member: ChannelType) -> None:
    sites = declaration_sites(member)
    assert sorted(s.split(":")[0] for s in sites) == [REGISTRY, TYPES], sites


def test_no_raw_channel_type_or_status_numbers_in_comparisons() -> None:
    raw: list[str] = []
    for rel, tree in FILES:
        for node in ast.walk(tree):
            if not isinstance(node, ast.Compare):
                continue
            sides = [node.left, *node.comparators]
            names = {_name(s) for s in sides}
            numbers = [n for s in sides for n in _ints(s)]
            if names & TYPE_NAMES and numbers:
                raw.append(f"{rel}:{node.lineno} compares a channel type with {numbers}")
            # Channel, token and user statuses are small numbers; HTTP statuses are not.
            if names & STATUS_NAMES and any(0 <= n < 10 for n in numbers):
                raw.append(f"{rel}:{node.lineno} compares a status with {numbers}")
    assert raw == []


def test_every_type_has_one_record() -> None:
    assert [p.type for p in PROVIDERS] == sorted(ChannelType)
    assert len(PROVIDERS_BY_TYPE) == len(ChannelType)


def test_capabilities_are_resolved_from_the_protocols() -> None:
    for provider in PROVIDERS:
        adaptor = adaptor_for(provider.type)
        assert needs_setup(adaptor) == isinstance(adaptor, NeedsSetup)
        assert speaks_claude(adaptor) == isinstance(adaptor, NativeClaude)
        assert owns_stream_format(adaptor) == isinstance(adaptor, OwnStreamFormat)
        assert serves_realtime(adaptor) == isinstance(adaptor, ServesRealtime)
    assert needs_setup(adaptor_for(ChannelType.VERTEX_AI))
    assert {t for t in ChannelType if speaks_claude(adaptor_for(t))} == {
        ChannelType.ANTHROPIC,
        ChannelType.AWS,
        ChannelType.VERTEX_AI,
    }
    assert {t for t in ChannelType if owns_stream_format(adaptor_for(t))} == {
        ChannelType.AWS,
        ChannelType.COHERE,
    }
    assert REALTIME_TYPES == {ChannelType.OPENAI, ChannelType.AZURE}
    assert all(serves_realtime(adaptor_for(t)) for t in REALTIME_TYPES)
    assert is_stream_response(adaptor_for(ChannelType.OPENAI), "text/event-stream; charset=utf-8")
    assert is_stream_response(adaptor_for(ChannelType.COHERE), "application/stream+json")
    assert not is_stream_response(adaptor_for(ChannelType.COHERE), "text/event-stream")


def test_the_registry_entry_reaches_the_adaptor() -> None:
    for provider in PROVIDERS:
        if provider.adaptor is not None:
            assert provider.adaptor.default_base_url == provider.base_url
            assert provider.adaptor.supports_stream_options == provider.stream_options
    # Types without an adaptor of their own use OpenAI's, with OpenAI's defaults (New API's fallback).
    assert adaptor_for(ChannelType.BAIDU) is adaptor_for(ChannelType.OPENAI) is adaptor_for(999)
    assert adaptor_for(ChannelType.UNKNOWN).default_base_url == "https://api.openai.com"


def test_adaptors_read_no_settings_store() -> None:
    for rel, tree in FILES:
        if not rel.startswith("relay/adaptors/"):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom | ast.Import):
                names = (
                    [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
                )
                assert not any(n.split(".")[0] in ("accounts", "newapi_site") for n in names), rel
