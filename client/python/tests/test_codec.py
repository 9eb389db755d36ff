"""The event-data codec: the JSON text must be what Node.js's JSON.stringify
writes for the same values (checked against a real node process), binary
values become placeholders and attachments, and unreadable data is refused
with a clear error."""

import json
import math
import subprocess

import pytest

from siobridge_socketio import codec

SAMPLES = [
    ["event", "plain", 42, -7, 0, True, False, None],
    [1.5, 0.1, 100.0, -0.5, 1e21, 1.5e-5, 1e-7, 1e-6, 123456789.125, 2.0**60, 5e-324, 1.7976931348623157e308],
    [-0.0, 1e16, 0.000123, 12345678901234567890.0, 3.14159, 2.5e-8],
    ["é ü 日本 😀", "quote \" backslash \\ slash /", "\n\r\t\b\f\x00\x1f\x7f", "\u2028\u2029", "lone \ud800 high"],
    {"b": 1, "2": 2, "10": 10, "a": [1, {"z": None, "0": "zero"}], "01": "not an index", "4294967295": "big"},
    [[], {}, [[[]]], {"": ""}],
]


def node_stringify(values):
    # Node parses what Python's json module writes (the same values) and
    # writes them back with JSON.stringify.
    script = "let d='';process.stdin.on('data',c=>d+=c).on('end',()=>{for(const l of d.split('\\n').filter(Boolean))console.log(JSON.stringify(JSON.parse(l)))})"
    text = "\n".join(json.dumps(value) for value in values)
    out = subprocess.run(["node", "-e", script], input=text.encode(), capture_output=True, check=True)
    return out.stdout.decode("utf-8", "surrogatepass").rstrip("\n").split("\n")


def test_json_text_is_what_json_stringify_writes():
    expected = node_stringify(SAMPLES)
    assert len(expected) == len(SAMPLES)
    for value, node_text in zip(SAMPLES, expected):
        ours, attachments = codec.to_json(value)
        assert ours == node_text, value
        assert attachments == []


@pytest.mark.parametrize(
    "number,text",
    [(1.0, "1"), (1.5e-5, "0.000015"), (1e-7, "1e-7"), (1e21, "1e+21"), (2.0**60, "1152921504606847000"),
     (float("nan"), "null"), (float("-inf"), "null"), (-0.0, "0")],
)
def test_numbers(number, text):
    assert codec.js_number(number) == text


def test_binary_values_become_placeholders_and_attachments():
    kind, data, attachments = codec.encode_value(["file", b"\x00\x01", {"inner": bytearray(b"\xff")}, [memoryview(b"mv")]])
    assert kind == codec.KIND_STR
    assert data == (
        b'["file",{"_placeholder":true,"num":0},{"inner":{"_placeholder":true,"num":1}},'
        b'[{"_placeholder":true,"num":2}]]'
    )
    assert attachments == [b"\x00\x01", b"\xff", b"mv"]
    assert codec.decode_value(kind, data, attachments) == ["file", b"\x00\x01", {"inner": b"\xff"}, [b"mv"]]


def test_decode_refuses_unreadable_data_with_a_reason():
    with pytest.raises(ValueError, match="not JSON"):
        codec.decode_value(codec.KIND_STR, b"not json", [])
    with pytest.raises(ValueError, match="not an array"):
        codec.decode_value(codec.KIND_STR, b'{"a":1}', [])
    with pytest.raises(ValueError, match="placeholder 1 has no attachment"):
        codec.decode_value(codec.KIND_STR, b'["x",{"_placeholder":true,"num":1}]', [b"only one"])
    with pytest.raises(ValueError, match="msgpack"):
        codec.decode_value(codec.KIND_BYTES, b"\x91\xa1x", [])


def test_values_json_cannot_carry_are_refused():
    with pytest.raises(codec.EncodeError, match="set"):
        codec.encode_value(["x", {1, 2}])
    with pytest.raises(codec.EncodeError, match="object"):
        codec.encode_value(["x", object()])


def test_server_side_payloads_carry_bytes_as_node_buffers():
    payload = codec.encode_payload(["ping", b"\x01\x02", {"n": 1.0}])
    assert payload == b'["ping",{"type":"Buffer","data":[1,2]},{"n":1}]'
    assert codec.decode_payload(payload) == ["ping", b"\x01\x02", {"n": 1}]
    with pytest.raises(ValueError, match="not JSON"):
        codec.decode_payload(b"\x92\xa4ping")


def test_details_fall_back_for_values_json_cannot_carry():
    import datetime

    detail = codec.encode_detail({"when": datetime.datetime(2024, 1, 2, 3, 4, 5), "tags": {"a"}, "nan": math.nan})
    assert json.loads(detail) == {"when": "2024-01-02T03:04:05", "tags": ["a"], "nan": None}
    assert codec.decode_detail(b"") is None
    assert codec.decode_detail(b"{bad") is None
