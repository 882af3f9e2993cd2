"""The wire format: round trips, limits, and every way a payload can be malformed."""

from __future__ import annotations

import socket
import struct

import pytest

from isthmus.privileged import protocol
from isthmus.privileged.exceptions import ProtocolError


@pytest.mark.parametrize("message", [
    protocol.Hello(protocol.Status.OK),
    protocol.Hello(protocol.Status.UNAUTHORIZED, "uid 65534 is not allowed"),
    protocol.ExecRequest(7, ["ip", "netns", "list"]),
    protocol.ExecRequest(8, ["cat"], stdin=b"\x00\xff" * 10, timeout_ms=1500),
    protocol.ExecRequest(9, ["echo", "caf\u00e9", "\udcff"], stdin=b""),
    protocol.NetnsRequest(10, protocol.NetnsOp.ADD, "router-1"),
    protocol.Reply(11, protocol.Status.OK, -9, b"out", b"err", "msg"),
])
def test_round_trip(message):
    frame = protocol.encode(message)
    assert struct.unpack("!I", frame[:4])[0] == len(frame) - 4
    assert protocol.decode(frame[4:]) == message


def test_stdin_none_and_empty_stdin_differ():
    none = protocol.decode(protocol.encode(protocol.ExecRequest(1, ["cat"]))[4:])
    empty = protocol.decode(protocol.encode(protocol.ExecRequest(1, ["cat"], stdin=b""))[4:])
    assert none.stdin is None and empty.stdin == b""


@pytest.mark.parametrize("payload, message", [
    (b"\x02\x02", "unsupported protocol version"),
    (b"\x01\x63", "unknown message kind"),
    (b"\x01\x02\x00", "truncated"),
    (b"\x01\x01\x00", "truncated"),
    (b"\x01\x01\x63\x00\x00\x00\x00", "invalid field"),  # unknown status
    (b"\x01\x03\x00\x00\x00\x01\x09\x00\x00\x00\x00", "invalid field"),  # unknown netns op
    (b"\x01\x02" + struct.pack("!IIBH", 1, 0, 0, 1) + b"\x00\x00\x00\x09abc", "runs past the end"),
    (b"\x01\x02" + struct.pack("!IIBH", 1, 0, 0, 60000), "at most"),
    (protocol.encode(protocol.Hello(protocol.Status.OK))[4:] + b"extra", "unexpected bytes"),
])
def test_malformed_payloads_raise_protocol_error(payload, message):
    with pytest.raises(ProtocolError, match=message):
        protocol.decode(payload)


def test_oversized_frame_is_refused_before_reading_it():
    left, right = socket.socketpair()
    try:
        left.sendall(struct.pack("!I", protocol.MAX_REQUEST_BYTES + 1))
        with pytest.raises(ProtocolError, match="exceeds the limit"):
            protocol.FrameReader(right, protocol.MAX_REQUEST_BYTES).read_frame()
    finally:
        left.close()
        right.close()


def test_truncated_frame_and_clean_eof():
    left, right = socket.socketpair()
    try:
        left.sendall(struct.pack("!I", 100) + b"\x01\x02abc")
        left.shutdown(socket.SHUT_WR)
        with pytest.raises(ProtocolError, match="missing"):
            protocol.FrameReader(right, 1000).read_frame()
    finally:
        left.close()
        right.close()
    left, right = socket.socketpair()
    left.close()
    assert protocol.FrameReader(right, 1000).read_message() is None
    right.close()


def test_large_frames_arrive_in_pieces():
    left, right = socket.socketpair()
    message = protocol.Reply(1, protocol.Status.OK, 0, b"x" * 5_000_000)
    try:
        import threading

        sender = threading.Thread(target=protocol.send_message, args=(left, message))
        sender.start()
        assert protocol.FrameReader(right, protocol.MAX_REPLY_BYTES).read_message() == message
        sender.join()
    finally:
        left.close()
        right.close()


def test_frame_reader_handles_split_and_coalesced_frames():
    left, right = socket.socketpair()
    try:
        first = protocol.encode(protocol.ExecRequest(1, ["a"]))
        second = protocol.encode(protocol.ExecRequest(2, ["b"]))
        reader = protocol.FrameReader(right, 1000)
        left.sendall(first + second[:3])
        assert reader.read_message().request_id == 1
        left.sendall(second[3:])
        assert reader.read_message().request_id == 2
        left.close()
        assert reader.read_message() is None
    finally:
        right.close()


def test_frame_reader_limits_and_body_timeout():
    left, right = socket.socketpair()
    try:
        reader = protocol.FrameReader(right, 100, body_timeout_s=0.2)
        left.sendall(struct.pack("!I", 50) + b"\x01\x02")  # starts a frame, never finishes it
        with pytest.raises(ProtocolError, match="not completed within"):
            reader.read_frame()
        with pytest.raises(ProtocolError, match="exceeds the limit"):
            left.sendall(struct.pack("!I", 101))
            protocol.FrameReader(right, 100).read_frame()
    finally:
        left.close()
        right.close()
