"""Speech to text is billed by how long the upload really plays, whatever its header claims."""

from __future__ import annotations

import io
import math
import wave

import openai
import pytest

from billing.models import Log
from tests.conftest import live, make_channel, make_token, make_user, settle
from tests.fakes.modes_upstream import FakeModes

pytestmark = [live, pytest.mark.relay]

RATIO = 15  # whisper-1's default model ratio


@pytest.fixture(scope="module")
def fake() -> FakeModes:
    return FakeModes().start()


def tokens_for(seconds: float) -> int:
    return round(math.ceil(seconds) / 60 * 1000)  # one minute = 1000 tokens


def transcribe(gateway, fake, name: str, filename: str, data: bytes, ctype: str) -> Log:
    make_channel(fake.base_url, key=f"stt-{name}", models="whisper-1")
    user = make_user(name, quota=10_000_000)
    client = openai.OpenAI(base_url=gateway.v1, api_key=f"sk-{make_token(user).key}", max_retries=0)
    client.audio.transcriptions.create(model="whisper-1", file=(filename, data, ctype))
    settle()
    return Log.objects.get(user_id=user.pk)


def wav_with_zero_data_size(seconds: int) -> bytes:
    """8 kHz 8-bit mono PCM whose header says the data chunk is empty (as streaming writers leave it).
    8 000 bytes a second: the size rule (16 000 a second) would bill half its length."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(1)
        w.setframerate(8_000)
        w.writeframes(b"\x81" * 8_000 * seconds)
    data = bytearray(buf.getvalue())
    at = data.index(b"data")
    data[at + 4 : at + 8] = b"\x00\x00\x00\x00"
    data[4:8] = (36).to_bytes(4, "little")  # RIFF size as if there were no samples either
    return bytes(data)


def mp3_32kbps(frames: int) -> bytes:
    """MPEG-1 Layer III, 32 kbit/s, 32 kHz mono: 144-byte frames of silence, 1152 samples (36 ms) each."""
    return (b"\xff\xfb\x18\xc0" + b"\x00" * 140) * frames


def test_wav_with_zero_data_size_is_billed_for_its_samples(gateway, fake):
    log = transcribe(gateway, fake, "stt-wav0", "a.wav", wav_with_zero_data_size(75), "audio/wav")
    assert log.prompt_tokens == tokens_for(75) == 1250
    assert log.quota == 1250 * RATIO


def test_mp3_is_billed_by_its_duration(gateway, fake):
    data = mp3_32kbps(2500)  # 90 s; 360 000 bytes, which the old bytes/16000 rule billed as 22.5 s
    log = transcribe(gateway, fake, "stt-mp3", "a.mp3", data, "audio/mpeg")
    assert log.prompt_tokens == tokens_for(90) == 1500
    assert log.quota == 1500 * RATIO


def test_unreadable_audio_falls_back_to_its_size_never_zero(gateway, fake):
    log = transcribe(gateway, fake, "stt-junk", "a.bin", b"\x01" * 100, "application/octet-stream")
    assert log.prompt_tokens == tokens_for(1) and log.quota > 0
