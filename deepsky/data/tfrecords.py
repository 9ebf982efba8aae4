"""TFRecord files of ``tf.train.Example`` records, read without TensorFlow.

A TFRecord file is a run of records, each framed as an 8-byte little-endian
length, the masked CRC-32C of those 8 bytes, the payload and the masked
CRC-32C of the payload. Every CRC is checked: a flipped bit or a truncated
file is one error naming the file and the record. The payload of the
records read here is a ``tf.train.Example`` protobuf (a map from feature
names to lists of bytes, floats or 64-bit integers), decoded by the small
wire-format reader below, which is all of protobuf those messages use.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Iterator

import google_crc32c
import numpy as np

from deepsky.errors import DeepskyError

_MASK_DELTA = 0xA282EAD8


def _masked_crc(data: bytes) -> int:
    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def iter_records(path) -> Iterator[bytes]:
    """The payloads of the TFRecord file at ``path``, each checked against its CRCs."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DeepskyError(f"{path}: cannot read ({exc.strerror or exc})") from None
    position, index = 0, 0
    while position < len(data):
        header = data[position : position + 12]
        if len(header) < 12:
            raise DeepskyError(f"{path}: truncated in the header of record {index} (byte {position}); "
                               f"the file ends after {index} whole records")
        length, length_crc = struct.unpack("<QI", header)
        if _masked_crc(header[:8]) != length_crc:
            raise DeepskyError(f"{path}: record {index} (byte {position}) has a corrupt length (CRC mismatch); "
                               f"not a TFRecord file, or damaged")
        start = position + 12
        payload = data[start : start + length]
        footer = data[start + length : start + length + 4]
        if len(payload) < length or len(footer) < 4:
            raise DeepskyError(f"{path}: truncated in record {index} (byte {position}): it needs {length} bytes "
                               f"and the file ends first")
        if _masked_crc(payload) != struct.unpack("<I", footer)[0]:
            raise DeepskyError(f"{path}: record {index} (byte {position}) is corrupt (its CRC does not match)")
        yield payload
        position, index = start + length + 4, index + 1


def _varint(buffer: bytes, position: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        byte = buffer[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, position
        shift += 7


def _fields(buffer: bytes) -> Iterator[tuple[int, int, object]]:
    """``(field number, wire type, value)`` of a protobuf message; length-delimited values are bytes."""
    position, end = 0, len(buffer)
    while position < end:
        key, position = _varint(buffer, position)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, position = _varint(buffer, position)
        elif wire == 2:
            length, position = _varint(buffer, position)
            value = buffer[position : position + length]
            position += length
        elif wire == 5:
            value = buffer[position : position + 4]
            position += 4
        elif wire == 1:
            value = buffer[position : position + 8]
            position += 8
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        yield number, wire, value


def _signed64(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _feature(buffer: bytes):
    """One ``tf.train.Feature``: a list of bytes, a float32 array or an int64 array."""
    for kind, _, body in _fields(buffer):
        if kind == 1:  # BytesList
            return [bytes(v) for _, _, v in _fields(body)]
        if kind == 2:  # FloatList, packed or not
            parts = [np.frombuffer(v, "<f4") for _, _, v in _fields(body)]
            return np.concatenate(parts) if parts else np.zeros(0, np.float32)
        if kind == 3:  # Int64List, packed or not
            values = []
            for _, wire, v in _fields(body):
                if wire == 0:
                    values.append(_signed64(v))
                else:
                    position = 0
                    while position < len(v):
                        item, position = _varint(v, position)
                        values.append(_signed64(item))
            return np.array(values, np.int64)
    return []


def parse_example(payload: bytes) -> dict:
    """The features of one serialised ``tf.train.Example``: name -> list of bytes or numpy array."""
    features = {}
    for number, _, body in _fields(payload):
        if number != 1:
            continue
        for entry_number, _, entry in _fields(body):
            if entry_number != 1:
                continue
            key, value = None, b""
            for field, _, part in _fields(entry):
                if field == 1:
                    key = bytes(part).decode()
                elif field == 2:
                    value = part
            if key is not None:
                features[key] = _feature(value)
    return features


def read_examples(path) -> list[dict]:
    """Every ``tf.train.Example`` of the TFRecord file at ``path``, decoded."""
    examples = []
    for index, payload in enumerate(iter_records(path)):
        try:
            examples.append(parse_example(payload))
        except (IndexError, ValueError, TypeError, UnicodeDecodeError) as exc:
            raise DeepskyError(f"{path}: record {index} is not a tf.train.Example ({exc})") from None
    return examples


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    value &= (1 << 64) - 1
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _length_delimited(number: int, body: bytes) -> bytes:
    return _encode_varint(number << 3 | 2) + _encode_varint(len(body)) + body


def encode_example(features: dict) -> bytes:
    """A serialised ``tf.train.Example`` of ``features``: name -> bytes/str list, float array or int array."""
    entries = b""
    for name, value in features.items():
        if isinstance(value, (bytes, str)) or (isinstance(value, (list, tuple)) and value
                                               and isinstance(value[0], (bytes, str))):
            items = [value] if isinstance(value, (bytes, str)) else value
            body = b"".join(_length_delimited(1, v.encode() if isinstance(v, str) else v) for v in items)
            feature = _length_delimited(1, body)
        else:
            array = np.atleast_1d(np.asarray(value))
            if array.dtype.kind == "f":
                feature = _length_delimited(2, _length_delimited(1, array.astype("<f4").tobytes()))
            else:
                packed = b"".join(_encode_varint(int(v)) for v in array)
                feature = _length_delimited(3, _length_delimited(1, packed))
        entry = _length_delimited(1, name.encode()) + _length_delimited(2, feature)
        entries += _length_delimited(1, entry)
    return _length_delimited(1, entries)


def write_records(path, payloads) -> Path:
    """Write ``payloads`` (bytes) as a TFRecord file at ``path``, atomically."""
    import os

    path = Path(path)
    tmp = path.with_name(f".{path.name}.part")
    try:
        with open(tmp, "wb") as handle:
            for payload in payloads:
                header = struct.pack("<Q", len(payload))
                handle.write(header + struct.pack("<I", _masked_crc(header)) + payload
                             + struct.pack("<I", _masked_crc(payload)))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
