"""Unit conversions written once: Mbit/s and bytes."""

from __future__ import annotations

__all__ = ["BITS_PER_BYTE", "bytes_per_s", "mbps", "seconds_per_byte"]

BITS_PER_BYTE = 8.0


def bytes_per_s(bandwidth_mbps):
    """Bytes per second at ``bandwidth_mbps`` megabits (10^6 bits) per second."""
    return bandwidth_mbps * 1e6 / BITS_PER_BYTE


def seconds_per_byte(bandwidth_mbps):
    """Seconds one byte takes at ``bandwidth_mbps`` (works on numpy arrays too)."""
    return BITS_PER_BYTE / (bandwidth_mbps * 1e6)


def mbps(payload_bytes, seconds):
    """The rate in Mbit/s of ``payload_bytes`` sent in ``seconds``."""
    return payload_bytes * BITS_PER_BYTE / seconds / 1e6
