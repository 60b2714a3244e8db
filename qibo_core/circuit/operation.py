"""What a circuit's list of gates may hold."""

from __future__ import annotations

from .channels import Channel
from .gate import Gate, M, Reset

Operation = Gate | M | Reset | Channel
"""Gates, and measurements with collapse=True, resets and noise channels where they stand."""
