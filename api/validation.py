"""Chinese messages for the request validation errors FastAPI raises (pydantic's English ``msg``).

Each pydantic error becomes ``{"loc", "field", "msg", "type"}``: ``field`` is the query or body field
as the client named it (``year``, ``comment``, ``items[0].status``; None for the request body as a
whole) and ``msg`` a Chinese message. The messages of the service's own validators (already Chinese)
lose pydantic's ``Value error, `` / ``Assertion failed, `` prefix; an error type not mapped here keeps
pydantic's message.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

LOCATIONS = frozenset({"body", "query", "path", "header", "cookie"})

FIXED_MESSAGES: dict[str, str] = {
    "missing": "缺少必填项",
    "int_parsing": "须为整数",
    "int_type": "须为整数",
    "int_from_float": "须为整数",
    "float_parsing": "须为数字",
    "float_type": "须为数字",
    "decimal_parsing": "须为数字",
    "finite_number": "须为有限的数字",
    "bool_parsing": "须为 true 或 false",
    "bool_type": "须为 true 或 false",
    "string_type": "须为文字",
    "string_unicode": "须为 UTF-8 文字",
    "string_pattern_mismatch": "格式不正确",
    "list_type": "须为列表",
    "extra_forbidden": "不允许的字段",
    "json_invalid": "请求体不是有效的 JSON",
    "json_type": "须为 JSON 文本",
    "model_type": "须为 JSON 对象",
    "model_attributes_type": "须为 JSON 对象",
    "dict_type": "须为 JSON 对象",
    "date_parsing": "须为日期（如 2025-12-31）",
    "date_from_datetime_parsing": "须为日期（如 2025-12-31）",
    "date_type": "须为日期（如 2025-12-31）",
    "datetime_parsing": "须为时间（如 2025-12-31T08:00:00+08:00）",
    "datetime_from_date_parsing": "须为时间（如 2025-12-31T08:00:00+08:00）",
    "datetime_type": "须为时间（如 2025-12-31T08:00:00+08:00）",
}
"""pydantic error type → Chinese message, for the types whose message needs no context."""

BOUND_MESSAGES: dict[str, tuple[str, str]] = {
    "greater_than_equal": ("ge", "须不小于 {}"),
    "less_than_equal": ("le", "须不大于 {}"),
    "greater_than": ("gt", "须大于 {}"),
    "less_than": ("lt", "须小于 {}"),
    "multiple_of": ("multiple_of", "须为 {} 的倍数"),
    "string_too_long": ("max_length", "长度不能超过 {} 个字符"),
    "too_long": ("max_length", "最多 {} 项"),
    "too_short": ("min_length", "至少 {} 项"),
}
"""pydantic error type → (the ``ctx`` key of its bound, the Chinese message around it)."""

PREFIXES = ("Value error, ", "Assertion failed, ")
"""What pydantic puts before the message of a validator's ``ValueError`` / ``AssertionError``."""


def _number(value: Any) -> str:
    """``0`` for 0.0, else the value as written."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def choices(expected: str) -> list[str]:
    """The values of pydantic's ``expected`` text of a literal or enum error.

    >>> choices("'confirmed', 'dismissed' or 'site_visit'"), choices("'csv' or 'xlsx'"), choices("1 or 2")
    (['confirmed', 'dismissed', 'site_visit'], ['csv', 'xlsx'], ['1', '2'])
    """
    return [part.strip().strip("'\"") for part in re.split(r", | or ", expected) if part.strip()]


def chinese_message(error: Mapping[str, Any]) -> str:
    """The Chinese message of one pydantic error (``type``, ``msg``, ``ctx``)."""
    kind = str(error.get("type", ""))
    msg = str(error.get("msg", ""))
    ctx = error.get("ctx") or {}
    if kind in FIXED_MESSAGES:
        return FIXED_MESSAGES[kind]
    if kind in BOUND_MESSAGES and BOUND_MESSAGES[kind][0] in ctx:
        key, text = BOUND_MESSAGES[kind]
        return text.format(_number(ctx[key]))
    if kind == "string_too_short" and "min_length" in ctx:
        return "不能为空" if ctx["min_length"] == 1 else f"长度至少 {ctx['min_length']} 个字符"
    if kind in ("literal_error", "enum") and "expected" in ctx:
        return "须为以下之一：" + "、".join(choices(str(ctx["expected"])))
    for prefix in PREFIXES:
        if msg.startswith(prefix):
            return msg.removeprefix(prefix)
    return msg


def field_name(loc: Sequence[Any]) -> str | None:
    """The field of an error location as the client named it; None for the request body as a whole.

    >>> field_name(("query", "year")), field_name(("body", "items", 0, "status")), field_name(("body",))
    ('year', 'items[0].status', None)
    """
    parts = list(loc)
    if parts and parts[0] in LOCATIONS:
        parts = parts[1:]
    name = ""
    for part in parts:
        name += f"[{part}]" if isinstance(part, int) else ("." if name else "") + str(part)
    return name or None


def translate(errors: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """FastAPI's validation errors as ``{"loc", "field", "msg", "type"}`` with Chinese messages."""
    out = []
    for error in errors:
        loc = list(error.get("loc", ()))
        kind = str(error.get("type", ""))
        if kind == "json_invalid":
            field = None  # pydantic's location is a character offset in the body, not a field
        else:
            field = field_name(loc)
        msg = "缺少请求体（JSON）" if kind == "missing" and field is None else chinese_message(error)
        out.append({"loc": loc, "field": field, "msg": msg, "type": kind})
    return out


def summary(problems: Sequence[Mapping[str, Any]]) -> str:
    """One Chinese sentence naming every problem: ``请求参数有误：year — 须为整数；…。``"""
    items = [(f"{p['field']} — {p['msg']}" if p["field"] else str(p["msg"])).rstrip("。") for p in problems]
    unique = list(dict.fromkeys(items))
    return "请求参数有误：" + "；".join(unique) + "。" if unique else "请求参数有误。"
