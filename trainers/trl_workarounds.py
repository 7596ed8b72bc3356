"""Every place where AFPTrainer works around its upstream classes, each with the version it targets and when it
can go: TRL 1.16's `SFTTrainer` and the transformers 5.x `Trainer` under it.

Each workaround is one function here; `AFPTrainer` calls them from thin overrides. When TRL or transformers is
upgraded, check each entry against the new code (the test named with each keeps the behaviour honest).
"""

from __future__ import annotations

import logging
import warnings
from contextlib import contextmanager

# the attribute the hidden max_length waits in between SFTTrainer.__init__'s check and the first preparation
_HIDDEN_MAX_LENGTH = "_afp_max_length_hidden_from_trl"


# ---- TRL 1.16, SFTTrainer.__init__: padding_free=True without packing refuses any max_length ------------------
# TRL raises "When `padding_free=True` without packing, `max_length` is not enforced", yet its own
# `_prepare_dataset` truncates every row to max_length in that case (the collator never truncated), so the limit
# is enforced. The check runs in __init__ after the collator is built and before the first `_prepare_dataset`, and
# nothing between reads max_length: it is hidden from the check and given back once, at the start of the first
# preparation (or when __init__ ends, whichever comes first). A dataset that skips preparation keeps TRL's refusal
# (there, nothing truncates). Can go when TRL accepts padding_free with max_length where it prepares the dataset.
# Test: tests/test_padding_free.py::test_padding_free_keeps_max_length.


@contextmanager
def padding_free_length_check_passed(trainer, args):
    """Around `SFTTrainer.__init__`: hide `args.max_length` from TRL's padding-free check (see above)."""
    skips_preparation = bool((args.dataset_kwargs or {}).get("skip_prepare_dataset"))
    hide = args.padding_free and not args.packing and args.max_length is not None and not skips_preparation
    if not hide:
        yield
        return
    setattr(trainer, _HIDDEN_MAX_LENGTH, args.max_length)
    args.max_length = None
    try:
        yield
    finally:
        give_back_max_length(trainer, args)


def give_back_max_length(trainer, args) -> None:
    """At the start of `_prepare_dataset`: TRL's check has run, so the hidden max_length is back for good."""
    hidden = trainer.__dict__.pop(_HIDDEN_MAX_LENGTH, None)
    if hidden is not None:
        args.max_length = hidden


# ---- TRL 1.16, SFTTrainer._prepare_dataset: no way to tokenize unpacked rows without truncating them ----------
# AFP packs the instructions itself (with their pairs, trainers/afp_packing.py), so it asks TRL to tokenize them
# unpacked; TRL then truncates to max_length, which `bfd_split` must not do (it keeps a long row's overflow in
# another packed row). max_length is None for that call only. Can go when `_prepare_dataset` takes a truncation
# switch, or when AFP's packing can hand TRL the pair columns.
# Test: tests/test_packing_with_pairs.py (bfd_split scores every completion token once).


@contextmanager
def untruncated(args, keep_overflow: bool):
    """`args.max_length` None inside the block when `keep_overflow` (see above); unchanged otherwise."""
    if not keep_overflow:
        yield
        return
    max_length, args.max_length = args.max_length, None
    try:
        yield
    finally:
        args.max_length = max_length


# ---- TRL 1.16, SFTTrainer._prepare_dataset: warnings about an EOS the tokenizer appends -------------------------
# TRL tokenizes a prompt alone and prompt + completion; with a tokenizer that appends EOS (ByT5, T5) the prompt
# alone ends with EOS, so TRL warns that the prompt "is not a prefix" and leaves that EOS out: exactly right, the
# completion follows the prompt without an EOS in between. TRL appends EOS to the completion text, then the
# tokenizer warns that the sequence "already has </s>" and adds none: also right. Only these two, and only with
# that EOS, are silenced; any other mismatch still warns. Can go when TRL stops warning about a trailing EOS of
# the prompt. Test: tests/test_afp_trainer.py::test_only_the_harmless_appended_eos_prefix_warning_is_silenced.


@contextmanager
def quiet_about_appended_eos(tokenizer):
    """Silence, inside the block, the two harmless warnings a tokenizer that appends EOS causes (see above)."""
    eos = getattr(tokenizer, "eos_token", None)
    trl_logger = logging.getLogger("trl.trainer.sft_trainer")

    def only_the_appended_eos(record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not (eos and "The tokenized prompt is not a prefix" in message and f": {eos!r}. The model" in message)

    trl_logger.addFilter(only_the_appended_eos)
    try:
        with warnings.catch_warnings():
            if eos:
                warnings.filterwarnings("ignore", message=f"This sequence already has {eos}", category=UserWarning)
            yield
    finally:
        trl_logger.removeFilter(only_the_appended_eos)


# ---- transformers 5.x, Trainer._issue_warnings_after_load: tied weights reported missing -----------------------
# A checkpoint of a model with tied weights (the LM head is the embedding matrix) stores the matrix once, so
# reloading it (load_best_model_at_end, resume_from_checkpoint) reports the head as missing although the tie
# restores it. Only such tied names are dropped; any other missing key is still reported. Can go when Trainer
# leaves tied parameters out of its missing-keys warning.
# Test: tests/test_afp_trainer.py::test_reloading_a_tied_checkpoint_does_not_report_the_tied_head_missing.


def without_tied_missing_keys(load_result, tied_names):
    """`load_result` without the missing keys that are tied parameters of the model (see above)."""
    missing = [key for key in load_result.missing_keys if key not in tied_names]
    if len(missing) == len(load_result.missing_keys):
        return load_result
    return load_result._replace(missing_keys=missing)
