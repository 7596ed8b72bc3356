"""Tests of xling_align.pooling against direct computations and `output_hidden_states` of the full model."""

import pytest
import torch

from tests.conftest import ARCHITECTURES, build_tiny_model
from xling_align.pooling import embed_sentences, layer_hidden_states, pad_right, pool_hidden_states

SENTENCES = ["Hello world.", "Hallo Welt, wie geht es?", "你好", "Bonjour", "a", "¿Qué tal estás hoy?", "xyz",
             "Ok."]


def test_pool_mean_and_last_ignore_padding_on_either_side():
    torch.manual_seed(0)
    hidden = torch.randn(2, 5, 3)
    right = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    left = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]])
    assert torch.allclose(pool_hidden_states(hidden, right, "last")[0], hidden[0, 2])
    assert torch.allclose(pool_hidden_states(hidden, left, "last")[0], hidden[0, 4])
    assert torch.allclose(pool_hidden_states(hidden, left, "last")[1], hidden[1, 4])
    assert torch.allclose(pool_hidden_states(hidden, right, "mean")[0], hidden[0, :3].mean(0))
    assert torch.allclose(pool_hidden_states(hidden, left, "mean")[0], hidden[0, 2:].mean(0))


def test_pool_rejects_bad_input():
    with pytest.raises(ValueError, match="pooling='max'"):
        pool_hidden_states(torch.zeros(1, 2, 3), torch.ones(1, 2), "max")
    with pytest.raises(ValueError, match="no real token"):
        pool_hidden_states(torch.zeros(2, 2, 3), torch.tensor([[1, 1], [0, 0]]), "mean")


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_layer_hidden_states_equal_output_hidden_states(arch):
    model = build_tiny_model(arch, num_layers=3).eval()
    input_ids, mask = pad_right([[5, 6, 7, 8], [9, 10]], 0)
    with torch.no_grad():
        reference = model(input_ids=input_ids, attention_mask=mask, output_hidden_states=True).hidden_states
        assert len(reference) == 4
        for layer in range(-4, 4):
            ours = layer_hidden_states(model, input_ids, mask, layer)
            torch.testing.assert_close(ours * mask[..., None], reference[layer] * mask[..., None])


def test_layer_hidden_states_stops_early_and_gives_the_lm_head_no_token():
    model = build_tiny_model("llama", num_layers=4).eval()
    ran = []
    for i, block in enumerate(model.model.layers):
        block.register_forward_hook(lambda m, a, o, i=i: ran.append(i))
    # the pass enters through the causal LM's own forward, whose head then gets an empty slice: no logits
    model.lm_head.register_forward_hook(lambda m, a, o: ran.append(("lm_head", tuple(a[0].shape))))
    input_ids, mask = pad_right([[5, 6, 7]], 0)
    layer_hidden_states(model, input_ids, mask, 2)
    assert ran == [0, 1, ("lm_head", (1, 0, 32))]


@pytest.mark.parametrize("arch", ["bloom", "llama"])
@pytest.mark.parametrize("pooling", ["mean", "last"])
def test_embeddings_independent_of_padding_side_and_batch(arch, pooling, byte_tokenizer):
    model = build_tiny_model(arch, num_layers=2)
    model.train()  # embed_sentences must switch dropout off and restore the mode
    byte_tokenizer.padding_side = "left"
    left = embed_sentences(model, byte_tokenizer, SENTENCES, layer=1, pooling=pooling, batch_size=8)
    byte_tokenizer.padding_side = "right"
    right = embed_sentences(model, byte_tokenizer, SENTENCES, layer=1, pooling=pooling, batch_size=8)
    one_by_one = embed_sentences(model, byte_tokenizer, SENTENCES, layer=1, pooling=pooling, batch_size=1)
    assert model.training
    assert left.dtype == torch.float32 and left.shape == (len(SENTENCES), 32)
    torch.testing.assert_close(left, right, atol=1e-5, rtol=0)
    torch.testing.assert_close(left, one_by_one, atol=1e-5, rtol=0)
    # independent reference: each sentence alone, no padding, full forward with output_hidden_states
    model.eval()
    for i, sentence in enumerate(SENTENCES):
        ids = torch.tensor([byte_tokenizer(sentence)["input_ids"]])
        with torch.no_grad():
            hidden = model(input_ids=ids, output_hidden_states=True).hidden_states[1][0]
        # ByT5 appends EOS: `last` pools the last byte before it (see xling_align.pooling)
        expected = hidden.mean(0) if pooling == "mean" else hidden[-2]
        torch.testing.assert_close(left[i], expected, atol=1e-5, rtol=0)


def test_embed_sentences_validates_layer_and_sentences(byte_tokenizer):
    model = build_tiny_model("gpt2", num_layers=2)
    with pytest.raises(ValueError, match="has 2 decoder layers"):
        embed_sentences(model, byte_tokenizer, ["a"], layer=3)
    with pytest.raises(ValueError, match="has 2 decoder layers"):
        embed_sentences(model, byte_tokenizer, ["a"], layer=-4)
    with pytest.raises(ValueError, match=r"sentences \[1\] are empty"):
        embed_sentences(model, byte_tokenizer, ["a", "  "])
    assert embed_sentences(model, byte_tokenizer, ["a"], layer=-3).shape == (1, 32)
