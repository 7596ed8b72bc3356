"""Tests of xling_align.alignment.pooling against direct computations and `output_hidden_states` of the full model."""

import pytest
import torch

from tests.conftest import ARCHITECTURES, build_tiny_model
from xling_align.alignment.pooling import embed_sentences, layer_hidden_states, pad_right, pool_hidden_states

SENTENCES = ["Hello world.", "Hallo Welt, wie geht es?", "你好", "Bonjour", "a", "¿Qué tal estás hoy?", "xyz", "Ok."]


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
        # ByT5 appends EOS: `last` pools the last byte before it (see xling_align.alignment.pooling)
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


def test_last_pooling_skips_an_appended_eos(byte_tokenizer):
    from xling_align.alignment.pooling import sentence_token_ids

    # ByT5 appends EOS (id 1) to every text: `last` would pool that same token for every sentence
    assert byte_tokenizer("ab")["input_ids"][-1] == byte_tokenizer.eos_token_id
    assert sentence_token_ids(byte_tokenizer, "ab", "last") == byte_tokenizer("ab")["input_ids"][:-1]
    assert sentence_token_ids(byte_tokenizer, "ab", "mean") == byte_tokenizer("ab")["input_ids"]
    assert sentence_token_ids(byte_tokenizer, "abcdef", "last", max_length=4) == [100, 101, 102]
    model = build_tiny_model("llama", num_layers=2)
    layer0 = embed_sentences(model, byte_tokenizer, ["cat", "dog", "tree"], layer=0, pooling="last")
    # at layer 0 a token's vector is its embedding: each sentence gets its own last letter's, not EOS's
    embeddings = model.get_input_embeddings().weight.detach()
    for row, letter in enumerate("tge"):
        torch.testing.assert_close(layer0[row], embeddings[byte_tokenizer(letter)["input_ids"][0]])
    assert not torch.allclose(layer0[0], layer0[1])


def test_tokenizers_without_special_tokens_are_unchanged():
    from xling_align.alignment.pooling import sentence_token_ids
    from xling_align.clone.tokenizer import build_tokenizer
    from xling_align.clone.world import build_world

    tokenizer = build_tokenizer(build_world())
    ids = tokenizer("the fox is a animal")["input_ids"]
    assert sentence_token_ids(tokenizer, "the fox is a animal", "last") == ids


def test_multi_layer_pass_equals_one_layer_at_a_time_and_output_hidden_states(byte_tokenizer):
    from xling_align.alignment.layer_forward import early_stop_blockers, hidden_states_at_layers
    from xling_align.analysis.layer_embeddings import embed_layers

    model = build_tiny_model("xglm", num_layers=3).eval()
    assert early_stop_blockers(model) == []
    together = embed_layers(model, byte_tokenizer, SENTENCES, layers=[0, 1, -1], pooling="mean")
    for layer in (0, 1, 3):
        alone = embed_sentences(model, byte_tokenizer, SENTENCES, layer=layer, pooling="mean")
        torch.testing.assert_close(together[layer], alone, atol=1e-5, rtol=0)
    input_ids, mask = pad_right([[5, 6, 7, 8], [9, 10]], 0)
    with torch.no_grad():
        reference = model(input_ids=input_ids, attention_mask=mask, output_hidden_states=True).hidden_states
        for stop_early in (None, False):
            states = hidden_states_at_layers(model, input_ids, mask, [2, 0], stop_early=stop_early)
            assert sorted(states) == [0, 2]
            for layer, value in states.items():
                torch.testing.assert_close(value * mask[..., None], reference[layer] * mask[..., None])


def test_an_instance_forward_wrapper_on_the_block_holder_runs_the_whole_backbone():
    from xling_align.alignment.layer_forward import early_stop_blockers

    model = build_tiny_model("llama", num_layers=3).eval()
    ran = []
    for index, block in enumerate(model.model.layers):
        block.register_forward_hook(lambda m, a, o, index=index: ran.append(index))
    real_forward = model.model.forward
    wrapper_ends = []

    def wrapper(*args, **kwargs):  # like accelerate's device_map hooks: work after the forward
        output = real_forward(*args, **kwargs)
        wrapper_ends.append(True)
        return output

    model.model.forward = wrapper
    assert early_stop_blockers(model)  # an early stop would skip the wrapper's end
    input_ids, mask = pad_right([[5, 6, 7]], 0)
    with torch.no_grad():
        hidden = layer_hidden_states(model, input_ids, mask, 1)
        reference = model(input_ids=input_ids, attention_mask=mask, output_hidden_states=True).hidden_states[1]
    torch.testing.assert_close(hidden, reference)
    assert ran[:3] == [0, 1, 2] and wrapper_ends[0] is True
    assert model.model.forward is wrapper  # the wrapper is back in place


def test_pair_pass_through_peft_and_compile_equals_the_bare_model():
    from peft import LoraConfig, get_peft_model

    model = build_tiny_model("qwen2", num_layers=2).eval()
    input_ids, mask = pad_right([[5, 6, 7, 8], [9, 10]], 0)
    with torch.no_grad():
        bare = layer_hidden_states(model, input_ids, mask, 1)
        peft_model = get_peft_model(model, LoraConfig(r=2, target_modules=["q_proj"], init_lora_weights=True))
        torch.testing.assert_close(layer_hidden_states(peft_model, input_ids, mask, 1), bare)
        torch.testing.assert_close(layer_hidden_states(torch.compile(peft_model), input_ids, mask, 1), bare)
    assert "forward" not in vars(model.model)  # the redirection left nothing behind
