"""How long an uploaded audio file plays, for speech-to-text billing.

A client controls every byte of its upload, headers included, so a length is taken from what the
file holds rather than from what it declares wherever that is cheap: a WAV's PCM bytes are
counted (a data size of 0 or past the end is ignored), and a compressed file's header length is
never allowed below what its bytes would play at a generous bitrate. Other formats are measured by
mutagen; when nothing can tell, the size at 128 kbit/s, never zero.
"""

from __future__ import annotations

import io

import mutagen
from mutagen.aiff import AIFF
from mutagen.flac import FLAC
from mutagen.wave import WAVE

FALLBACK_BYTES_PER_SECOND = 16_000  # 128 kbit/s
LOSSY_MAX_BYTES_PER_SECOND = 40_000  # 320 kbit/s: the most any lossy speech file carries
LOSSLESS_MAX_BYTES_PER_SECOND = 192_000  # 48 kHz 16-bit stereo PCM
LOSSLESS = (FLAC, AIFF, WAVE)


def wav_seconds(data: bytes) -> float | None:
    """Seconds of PCM in a RIFF/WAVE file by the bytes present; None when it is not one."""
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return None
    pos, byte_rate = 12, 0
    while pos + 8 <= len(data):
        chunk, size = data[pos : pos + 4], int.from_bytes(data[pos + 4 : pos + 8], "little")
        start = pos + 8
        if chunk == b"fmt " and size >= 16:
            byte_rate = int.from_bytes(data[start + 8 : start + 12], "little")
        elif chunk == b"data":
            available = len(data) - start
            held = size if 0 < size <= available else available  # streaming writers leave 0 or 0xFFFFFFFF
            return held / byte_rate if byte_rate else None
        pos = start + size + (size & 1)
    return None


def measured_seconds(data: bytes) -> float | None:
    """The file's playing time, or None when it cannot be told."""
    seconds = wav_seconds(data)
    if seconds:
        return seconds
    try:
        parsed = mutagen.File(io.BytesIO(data))
    except Exception:  # mutagen raises many kinds on hostile input: all mean "cannot tell"
        return None
    length = float(getattr(getattr(parsed, "info", None), "length", 0) or 0) if parsed is not None else 0.0
    if length <= 0:
        return None
    ceiling = LOSSLESS_MAX_BYTES_PER_SECOND if isinstance(parsed, LOSSLESS) else LOSSY_MAX_BYTES_PER_SECOND
    return max(length, len(data) / ceiling)


def fallback_seconds(data: bytes) -> float:
    return max(len(data) / FALLBACK_BYTES_PER_SECOND, 1.0)
