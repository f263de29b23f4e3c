"""``mini_cs``: synthetic Mandarin-English code-switching speech (sentences, espeak-ng, Kaldi dirs)."""
