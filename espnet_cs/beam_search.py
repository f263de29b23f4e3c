"""Batched beam search on the key/value cache, as openai-whisper's ``BeamSearchDecoder`` and
``MaximumLikelihoodRanker`` search and rank.

Each step extends every beam by its ``beam_size + 1`` most probable tokens, keeps the
``beam_size`` best unfinished sequences of each utterance and sets aside those that ended; an
utterance is done when ``round(beam_size * patience)`` have ended, and then leaves the batch and
the cache, as greedy decoding's finished utterances do. The self-attention cache holds one row
per beam and is reordered when beams fork; cross-attention keys and values stay one row per
utterance (:func:`espnet_cs.decoder.decoder_block_with_unread_prefix`). The first step runs one
row per utterance: every beam starts from the same task tokens.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from espnet_cs.decoder import CSWhisperDecoder
from espnet_cs.few_rows import few_rows_linears
from espnet_cs.search import Decoded, DecodingConfig, TokenFilter, best_candidate, keep_rows_, max_new_tokens
from espnet_cs.tokenizer import CSTokenizer

Tokens = tuple[int, ...]  # the sampled tokens of a beam


@torch.no_grad()
def beam_search_decode(
    decoder: CSWhisperDecoder, memory: torch.Tensor, tokenizer: CSTokenizer, config: DecodingConfig
) -> list[Decoded]:
    """Beam search over a batch; each utterance's result does not depend on its batch mates.

    With ``patience`` >= 1 (or one utterance) the tokens equal ``whisper.decode`` with the same
    ``beam_size``, ``patience``, ``length_penalty`` and task tokens. (With ``patience`` < 1,
    openai-whisper finishes an utterance with its beams of the step at which the whole batch
    ended; here, of the step at which the utterance ended.)

    Args:
        decoder: the text decoder.
        memory: (batch, frames, d_model) encoder states.
        tokenizer: gives the task tokens and the suppressed tokens.
        config: options (``beam_size``, ``patience``, ``length_penalty``, token filters).
    Returns:
        the chosen sequence of each utterance, with its log-probability.
    """
    beam_size, eot, device = config.beam_size, tokenizer.eot, memory.device
    max_candidates = round(beam_size * (config.patience or 1.0))
    token_filter = TokenFilter(tokenizer, config, device)
    self_attention = [m for block in decoder.decoders.blocks for m in (block.attn.key, block.attn.value)]

    finished: list[dict[Tokens, float]] = [{} for _ in range(memory.size(0))]
    active = list(range(memory.size(0)))  # utterance of each group of rows
    beams: list[Tokens] = [() for _ in active]  # sampled tokens of each row
    sums = torch.zeros(len(active), device=device)
    rows_per_utterance = 1  # the first step: every beam is the task tokens
    tokens = torch.tensor(tokenizer.sot_sequence, device=device).repeat(len(active), 1)
    cross_kv = decoder.cross_attention_kv(memory, heads_contiguous=True)
    prompts = decoder.prompt_states(memory, cross_kv)
    with decoder.kv_cache(cross_kv) as cache, few_rows_linears(decoder.decoders):
        for step in range(max_new_tokens(decoder, tokenizer, config)):
            logits = decoder.logits(tokens, memory, prompts, cache, beams=rows_per_utterance)[:, -1]
            token_filter(logits, step, beams)
            top_logprobs, top_tokens = F.log_softmax(logits.float(), dim=-1).topk(beam_size + 1)
            scores, candidates = (sums[:, None] + top_logprobs).tolist(), top_tokens.tolist()

            kept, sources, next_scores, still_active = [], [], [], []
            for group, utterance in enumerate(active):
                rows = range(group * rows_per_utterance, (group + 1) * rows_per_utterance)
                extended, source = {}, {}
                for row in rows:
                    for score, token in zip(scores[row], candidates[row]):
                        sequence = (*beams[row], token)
                        extended[sequence], source[sequence] = score, row
                ended, saved = {}, []
                for sequence in sorted(extended, key=extended.get, reverse=True):
                    if sequence[-1] == eot:
                        ended[sequence] = extended[sequence]
                    else:
                        saved.append(sequence)
                        if len(saved) == beam_size:
                            break
                for sequence in sorted(ended, key=ended.get, reverse=True):
                    if len(finished[utterance]) >= max_candidates:
                        break
                    finished[utterance][sequence] = ended[sequence]
                if len(finished[utterance]) >= max_candidates:
                    add_unfinished(finished[utterance], saved, [extended[s] for s in saved], beam_size, eot)
                    continue
                still_active.append(utterance)
                kept += saved
                sources += [source[s] for s in saved]
                next_scores += [extended[s] for s in saved]
            if not still_active:
                break
            if len(still_active) < len(active):
                staying = set(still_active)
                groups = [group for group, utterance in enumerate(active) if utterance in staying]
                memory = memory[torch.tensor(groups, device=device)]
                for module in cache.keys() - set(self_attention):
                    cache[module] = keep_rows_(cache[module], groups)
            if sources != list(range(len(beams))):  # beams forked, or utterances left
                index = torch.tensor(sources, device=device)
                for module in self_attention:
                    cache[module] = cache[module][index]
            active, beams, rows_per_utterance = still_active, kept, beam_size
            sums = torch.tensor(next_scores, device=device)
            tokens = torch.tensor([sequence[-1] for sequence in kept], device=device)[:, None]
        else:
            for group, utterance in enumerate(active):  # the step limit: unfinished beams count too
                rows = range(group * rows_per_utterance, (group + 1) * rows_per_utterance)
                add_unfinished(
                    finished[utterance], [beams[r] for r in rows], [sums[r].item() for r in rows], beam_size, eot
                )

    return [
        best_candidate(
            [Decoded(list(sequence[: sequence.index(eot)]), score) for sequence, score in candidates.items()],
            config.length_penalty,
        )
        for candidates in finished
    ]


def add_unfinished(
    finished: dict[Tokens, float], beams: list[Tokens], scores: list[float], beam_size: int, eot: int
) -> None:
    """openai-whisper's ``finalize``: fewer than ``beam_size`` finished candidates are topped up
    with the most probable unfinished ``beams`` (end of text appended)."""
    if len(finished) >= beam_size:
        return
    # descending by score, equal scores last beam first (the reverse of a stable ascending sort, as numpy's)
    for score, sequence in sorted(zip(scores, beams), key=lambda pair: pair[0])[::-1]:
        finished[(*sequence, eot)] = score
        if len(finished) >= beam_size:
            break
