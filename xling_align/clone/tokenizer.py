"""A word-level tokenizer for the cloned-language world: one token per word of L1 and of L2.

Built from the world's lexicon with the `tokenizers` library (WordLevel model, whitespace split) and
wrapped as a transformers fast tokenizer, so that `save_pretrained` / `AutoTokenizer.from_pretrained`,
lm-eval's HFLM and TRL all use it like any other tokenizer. No special token is added on encode: the
pretraining stream and lm-eval's contexts are both plain word sequences.

Example:
    >>> from xling_align.clone.world import build_world
    >>> from xling_align.clone.tokenizer import build_tokenizer
    >>> tok = build_tokenizer(build_world())
    >>> len(tok("the fox is a animal")["input_ids"])
    5
"""

from __future__ import annotations

from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from xling_align.clone.world import SHARED_TOKENS, World

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<s>", "</s>"
SPECIAL_TOKENS = (PAD, UNK, BOS, EOS)


def build_tokenizer(world: World) -> PreTrainedTokenizerFast:
    """The word-level tokenizer of `world`: special tokens, shared tokens, L1 words, then the L2 words that
    differ from their L1 word (an anchor entity has one token for both languages)."""
    vocab: dict[str, int] = {}
    l2_only = [w for w, l1 in zip(world.l2_vocabulary, world.l1_vocabulary) if w != l1]
    for token in (*SPECIAL_TOKENS, *SHARED_TOKENS, *world.l1_vocabulary, *l2_only):
        if token in vocab:
            raise ValueError(
                f"token {token!r} appears twice in the clone lexicon; an L2 word may equal only its "
                "own L1 word (an anchor)."
            )
        vocab[token] = len(vocab)
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    # split on whitespace and keep punctuation as separate words ("fox ?" and "fox?" both give 2 tokens)
    backend.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()])
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token=PAD,
        unk_token=UNK,
        bos_token=BOS,
        eos_token=EOS,
        padding_side="right",
        model_max_length=256,
    )
