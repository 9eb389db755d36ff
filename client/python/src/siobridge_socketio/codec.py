"""How socket.io event data crosses the daemon, byte for byte as a Node.js
socket.io server with the default parser writes it (PROTOCOL.md section 3).

A Value of kind KIND_STR holds the JSON text of the event array as
JavaScript's JSON.stringify would write it, binary arguments replaced by
{"_placeholder":true,"num":i}, their bytes beside it as attachments. Writing
the text the way Node does (number formatting, key order, escapes) keeps the
cluster's messages identical whichever language emitted them.

Pure functions, no shared state: safe from any thread.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, Callable, Iterable, List, Optional, Sequence, Tuple

KIND_STR = 0
KIND_BYTES = 1

_BINARY = (bytes, bytearray, memoryview)
# json's own string escaper (C-accelerated) writes exactly what JSON.stringify
# writes for every string that is valid Unicode.
_quote: Callable[[str], str] = json.encoder.encode_basestring  # type: ignore[attr-defined]
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
# JavaScript lists "array index" keys (canonical integers below 2**32 - 1)
# first, ascending, then the other keys in insertion order.
_INDEX_KEY = re.compile(r"0|[1-9][0-9]{0,9}")


class EncodeError(ValueError):
    """Event data that JSON cannot carry (e.g. a set or a datetime)."""


def js_number(value: float) -> str:
    """A float as JavaScript's Number.prototype.toString writes it.

    Non-finite numbers become null, as JSON.stringify makes them.
    """
    if math.isnan(value) or math.isinf(value):
        return "null"
    if value == 0:
        return "0"
    if value < 0:
        return "-" + js_number(-value)
    if value < 2**53 and value.is_integer():
        return str(int(value))
    # repr gives the shortest digits that round-trip, as JavaScript does; then
    # ECMAScript's Number::toString layout: x = digits * 10**(point - k).
    mantissa, _, exponent = repr(value).partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = whole + fraction
    point = len(whole) + int(exponent or 0)
    stripped = digits.lstrip("0")
    point -= len(digits) - len(stripped)
    digits = stripped.rstrip("0")
    k = len(digits)
    if k <= point <= 21:
        return digits + "0" * (point - k)
    if 0 < point <= 21:
        return digits[:point] + "." + digits[point:]
    if -6 < point <= 0:
        return "0." + "0" * (-point) + digits
    e = point - 1
    head = digits[0] + ("." + digits[1:] if k > 1 else "")
    return f"{head}e{'+' if e >= 0 else '-'}{abs(e)}"


def _string(text: str) -> str:
    quoted = _quote(text)
    if _LONE_SURROGATE.search(text):
        # JSON.stringify writes lone surrogates as lowercase \u escapes.
        quoted = _LONE_SURROGATE.sub(lambda m: "\\u%04x" % ord(m.group()), quoted)
    return quoted


def _key(key: Any) -> str:
    if isinstance(key, str):
        return key
    if key is True:
        return "true"
    if key is False:
        return "false"
    if key is None:
        return "null"
    if isinstance(key, int):
        return str(key)
    if isinstance(key, float):
        return js_number(key)
    raise EncodeError(f"a dict key of type {type(key).__name__} cannot be sent as JSON")


def _ordered_items(mapping: Any) -> List[Tuple[str, Any]]:
    items = [(_key(k), v) for k, v in mapping.items()]
    if not any(_INDEX_KEY.fullmatch(k) for k, _ in items):
        return items
    indexes = sorted(
        ((k, v) for k, v in items if _INDEX_KEY.fullmatch(k) and int(k) < 2**32 - 1),
        key=lambda kv: int(kv[0]),
    )
    taken = {k for k, _ in indexes}
    return indexes + [(k, v) for k, v in items if k not in taken]


def _write(value: Any, out: List[str], attachments: List[bytes], binary_placeholders: bool) -> None:
    # Order of checks: bool before int (bool is an int), str before sequences.
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, str):
        out.append(_string(value))
    elif isinstance(value, int):
        out.append(str(int(value)))
    elif isinstance(value, float):
        out.append(js_number(value))
    elif isinstance(value, _BINARY):
        if binary_placeholders:
            attachments.append(bytes(value))
            out.append('{"_placeholder":true,"num":%d}' % (len(attachments) - 1))
        else:
            # What JSON.stringify makes of a Node Buffer.
            out.append('{"type":"Buffer","data":[' + ",".join(map(str, bytes(value))) + "]}")
    elif isinstance(value, (list, tuple)):
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _write(item, out, attachments, binary_placeholders)
        out.append("]")
    elif isinstance(value, dict):
        out.append("{")
        for i, (key, item) in enumerate(_ordered_items(value)):
            if i:
                out.append(",")
            out.append(_string(key))
            out.append(":")
            _write(item, out, attachments, binary_placeholders)
        out.append("}")
    else:
        raise EncodeError(f"a value of type {type(value).__name__} cannot be sent as JSON")


def to_json(value: Any, binary_placeholders: bool = True) -> Tuple[str, List[bytes]]:
    """JSON text as JSON.stringify writes it, and the binary attachments."""
    out: List[str] = []
    attachments: List[bytes] = []
    _write(value, out, attachments, binary_placeholders)
    return "".join(out), attachments


def encode_value(items: Iterable[Any]) -> Tuple[int, bytes, List[bytes]]:
    """Event (or ack) arguments as (kind, data bytes, attachments)."""
    text, attachments = to_json(list(items))
    return KIND_STR, text.encode("utf-8", "surrogatepass"), attachments


def _reconstruct(value: Any, attachments: List[bytes]) -> Any:
    if isinstance(value, list):
        return [_reconstruct(item, attachments) for item in value]
    if isinstance(value, dict):
        if value.get("_placeholder") is True and isinstance(value.get("num"), int) and not isinstance(
            value.get("num"), bool
        ):
            num = value["num"]
            if num < 0 or num >= len(attachments):
                raise ValueError(f"binary placeholder {num} has no attachment")
            return attachments[num]
        return {key: _reconstruct(item, attachments) for key, item in value.items()}
    return value


def decode_value(kind: int, data: bytes, attachments: Sequence[bytes]) -> List[Any]:
    """The list of arguments of a Value; raises ValueError when unreadable."""
    if kind == KIND_BYTES:
        raise ValueError(
            "event data in the msgpack parser's encoding (KIND_BYTES): this server uses socket.io's "
            "default JSON parser, and every server of a cluster must use the same parser"
        )
    if kind != KIND_STR:
        raise ValueError(f"unknown Value kind {kind}")
    try:
        decoded = json.loads(bytes(data).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"event data is not JSON: {error}") from None
    if not isinstance(decoded, list):
        raise ValueError("event data is not an array")
    arguments: List[Any] = _reconstruct(decoded, [bytes(a) for a in attachments])
    return arguments


def _revive_buffers(value: Any) -> Any:
    if isinstance(value, list):
        return [_revive_buffers(item) for item in value]
    if isinstance(value, dict):
        if (
            len(value) == 2
            and value.get("type") == "Buffer"
            and isinstance(value.get("data"), list)
            and all(isinstance(b, int) and not isinstance(b, bool) and 0 <= b < 256 for b in value["data"])
        ):
            return bytes(value["data"])
        return {key: _revive_buffers(item) for key, item in value.items()}
    return value


def encode_payload(items: Iterable[Any]) -> bytes:
    """serverSideEmit arguments and answers, as the Node adapter writes them:
    JSON.stringify of the array (bytes as Node's Buffer JSON)."""
    text, _ = to_json(list(items), binary_placeholders=False)
    return text.encode("utf-8", "surrogatepass")


def decode_payload(payload: bytes) -> List[Any]:
    """The arguments of a serverSideEmit payload (Buffer JSON back to bytes)."""
    payload = bytes(payload)
    if not payload:
        return []
    if payload[:1] != b"[":
        raise ValueError("a server-side emit payload that is not JSON (another socket.io parser?)")
    try:
        decoded = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"server-side emit payload is not JSON: {error}") from None
    decoded = _revive_buffers(decoded)
    return decoded if isinstance(decoded, list) else [decoded]


def _detail_default(value: Any) -> Any:
    if isinstance(value, (set, frozenset)):
        return list(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return None


def encode_detail(value: Any) -> bytes:
    """A socket's handshake or data for fetchSockets, as JSON (values JSON
    cannot carry become strings or null)."""
    try:
        text, _ = to_json(value, binary_placeholders=False)
    except EncodeError:
        text = json.dumps(_jsonable(value), ensure_ascii=False, separators=(",", ":"), default=_detail_default)
    return text.encode("utf-8", "surrogatepass")


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, _BINARY):
        return {"type": "Buffer", "data": list(bytes(value))}
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def decode_detail(data: Optional[bytes]) -> Any:
    """A socket's handshake or data from fetchSockets; None when absent or unreadable."""
    if not data:
        return None
    try:
        return json.loads(bytes(data).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
