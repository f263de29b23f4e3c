"""The sample rate of every audio path: stage 2's output, the synthetic corpus, decoding."""

SAMPLE_RATE = 16000
"""Samples per second, Whisper's (``whisper.audio.SAMPLE_RATE``), here without importing torch."""
