"""What a session agreed with its client, in `initialize`, about moving arrays (protocol
version 4): binary frames (arrays as raw bytes after their message) and the descriptor socket
(arrays as sealed memfds).

The socket is the client's: it left one end open in the backend at the descriptor its offer
names and wrote a token on it first. The backend takes it only when that descriptor is a Unix
socket whose first message is exactly the token: a backend started through ssh, or through a
wrapper that closes descriptors, finds nothing there (or something else, which it leaves alone)
and the session goes on without sealed arrays.
"""

from __future__ import annotations

import os
import socket

import numpy as np

from ..protocol import sealed
from ..protocol.handshake import DescriptorOffer, InitializeOptions
from . import sharable


class Transfer:
    """The ways arrays may cross in one session; `shared_memory` False (--no-shm) refuses
    sealed memory (and shm segments)."""

    def __init__(self, *, shared_memory: bool = True) -> None:
        self.shared_memory = shared_memory
        self.binary = False
        """Binary frames agreed."""
        self.socket: socket.socket | None = None
        """The descriptor socket, once found: sealed arrays agreed."""

    def agree(self, options: InitializeOptions) -> None:
        """Take what the client asked for, as far as this backend can."""
        self.binary = options.binary_frames
        if options.descriptors is not None and self.shared_memory and sealed.available():
            self.socket = _client_socket(options.descriptors)

    def seal(self, array: np.ndarray) -> int | None:
        """A sealed memfd holding `array`: its own pages when they can be handed over (memory
        from Backend.new_amplitudes), else a copy; None if no memfd can be made now."""
        fd = sharable.hand_over(array)
        if fd is not None:
            return fd
        try:
            return sealed.sealed_copy(array)
        except OSError:
            return None


def _client_socket(offer: DescriptorOffer) -> socket.socket | None:
    """The socket at `offer.fd`, if it is the client's (its first message is the token)."""
    if offer.fd <= 2:
        return None  # stdin, stdout, stderr carry the protocol and the logs
    try:
        sock = socket.socket(fileno=offer.fd)
    except (OSError, ValueError):
        return None  # nothing there, or not a socket
    try:
        token = offer.token.encode()
        if (sock.family == socket.AF_UNIX and sock.type == socket.SOCK_SEQPACKET
                and sock.recv(len(token) + 1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == token):
            sock.recv(len(token) + 1)
            os.set_inheritable(sock.fileno(), False)
            return sock
    except OSError:
        pass  # no message waiting: not the client's
    sock.detach()  # someone else's descriptor: leave it open, untouched
    return None
