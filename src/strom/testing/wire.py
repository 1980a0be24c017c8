"""A blocking raw-protocol client for tests: send one request, read its response.

Tests use it to check exact error codes and fields that higher-level clients
hide, and to send malformed bytes.
"""

from __future__ import annotations

import socket
import struct
from typing import Any

from strom.protocol.frame import RequestHeader, decode_response, encode_request

_SIZE = struct.Struct(">i")


class RawClient:
    def __init__(self, bootstrap: str, timeout_s: float = 10.0, client_id: str = "raw") -> None:
        host, _, port = bootstrap.rpartition(":")
        self.sock = socket.create_connection((host, int(port)), timeout=timeout_s)
        self.client_id = client_id
        self._correlation = 0

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read_frame(self) -> bytes:
        size = _SIZE.unpack(self._read_exactly(4))[0]
        return self._read_exactly(size)

    def _read_exactly(self, n: int) -> bytes:
        chunks = []
        while n:
            chunk = self.sock.recv(n)
            if not chunk:
                raise ConnectionError("connection closed by the broker")
            chunks.append(chunk)
            n -= len(chunk)
        return b"".join(chunks)

    def send(self, request: Any, version: int) -> int:
        """Send without waiting (acks=0 produce); return the correlation id."""
        self._correlation += 1
        header = RequestHeader(request.API_KEY, version, self._correlation, self.client_id)
        self.sock.sendall(encode_request(header, request))
        return self._correlation

    def request(self, request: Any, version: int) -> Any:
        correlation = self.send(request, version)
        got, response = decode_response(request.API_KEY, version, self.read_frame())
        if got != correlation:
            raise AssertionError(f"correlation id {got}, expected {correlation}")
        return response

    def is_closed_by_peer(self, timeout_s: float = 5.0) -> bool:
        self.sock.settimeout(timeout_s)
        try:
            return self.sock.recv(1) == b""
        except (ConnectionResetError, BrokenPipeError):
            return True
        except TimeoutError:
            return False

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> RawClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
