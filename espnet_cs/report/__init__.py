"""RESULTS.md of a recipe: one table per test set and the sections that compare its systems.

Modules, one job each:

- :mod:`.rows`: the rows (:class:`~.rows.Row`), read from ``<exp or archive>/<system>/decode_<set>``;
- :mod:`.cells`: number and markdown formatting shared by the sections;
- :mod:`.tables`: the per-set results tables and what their columns mean;
- :mod:`.variants`: the decode variants (asr.sh ``--decode_variant``) beside each system's decode without one;
- :mod:`.conditions`: MER by acoustic condition class, where the archive keeps the set's ``utt2condition``;
- :mod:`.comparisons`: the paired comparisons and the papers' findings;
- :mod:`.forgetting`: trained systems against the zero-shot backbone on monolingual sets;
- :mod:`.attention`: the LID heads (stage 4) and the guided heads' attention (stage 10);
- :mod:`.previous`: ``RESULTS.json`` (the rates of every table) and the comparison with an earlier one;
- :mod:`.document`: the whole document, in order.
"""
