"""Attention guidance: LID heads of Whisper's decoder, their statistics and selection, and the guidance loss.

Modules: :mod:`~espnet_cs.guidance.rows` (where word tokens and LID columns are),
:mod:`~espnet_cs.guidance.capture` (differentiable self-attention probabilities),
:mod:`~espnet_cs.guidance.heads` (the LID-head definition, ranking, selection and the
``lid_heads.json`` file), :mod:`~espnet_cs.guidance.statistics` (raw statistics of split jobs,
merged exactly), :mod:`~espnet_cs.guidance.loss` (the loss the model adds). Teacher-forced passes over a data dir
are above the model, in :mod:`espnet_cs.attention_analysis`.

Positions. With the two-LID task tokens (``zh_en``) the teacher-forced decoder input is
``[soft prompts] <|sot|> <|zh|> <|en|> <|transcribe|> <|notimestamps|> y1 y2 ...``. Target token
``y_i`` is *output* at the position just before it; that position's row of a self-attention map
is "the attention of ``y_i``". Its ``<|zh|>`` and ``<|en|>`` columns are the LID columns. Word
tokens are the targets tagged ``zh`` or ``en`` (:mod:`espnet_cs.tokenizer`); the others
(spaces, punctuation, end of text) are neither counted nor guided.

LID head (indicator). At one word token, head ``(layer, head)`` is an LID head when the token's
attention on the two LID columns together exceeds its attention on every other single column: the
LID columns dominate. Heads are ranked by the number of word tokens (over all training sentences)
at which they are LID heads; those that are LID heads at least at ``min_fraction`` of the word
tokens are *the LID heads*; ties in the ranking go to the head with more LID-column attention.
Counted per token, not per sentence: a count of sentences stops at their number for every head
that dominates in all of them, leaving their ranking to the tie-break; a count of tokens still
tells them apart (a run's counts: its ``lid_heads.json``; mini_cs's RESULTS.md and cs_bench's RESULTS_v1.md,
"LID heads").
Heads of decoder layer 0 are left out: their attention is computed from frozen embeddings alone,
which no adapter can change (``FIRST_GUIDABLE_LAYER``). Stage 4 writes the ranking
(``lid_heads.json``); a model's guidance config selects from it with a registered selection
(:data:`~espnet_cs.guidance.heads.SELECTIONS`): a top fraction of them, all, or a random fraction of all
heads (ablation).

Guidance loss. For every selected head and word token, the two LID-column attentions are
regressed (squared error) toward the code-switching map: ``c`` on the column of the token's own
language, 0 on the other. The squared errors are summed over the two columns, the selected heads
and the word tokens, as the paper's loss is written (so lambda's effect grows with the number of
selected heads), and divided by the number of utterances, the normalization of ESPnet's
cross-entropy. The squared error is one registered loss (:data:`~espnet_cs.guidance.loss.LOSSES`)
of each word token at each selected head; the sum and the division hold for every one.
"""
