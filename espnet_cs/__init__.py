"""espnet-cs: Whisper adapted to Mandarin-English code-switching ASR inside ESPnet."""
