"""`--model xling` scores every request as `--model hf` does, through lm-eval's own command line.

Each run is lm-eval's `cli_evaluate` (the `lm_eval` command, in this process to save the start-up time)
with `--log_samples`; the per-request log-likelihoods and `is_greedy` of `xling` and `hf` are compared
request by request on every xling task family, 0- and 5-shot (English and in-language demonstrations,
per-document and fixed demonstrations), with batch sizes 1 and 8, a LoRA adapter and a left-padding
tokenizer. The model is a tiny random Llama with large weights (so a wrong position or mask shows) and a
1024-token window, which 5-shot byte-level prompts overflow: left truncation is compared too.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures" / "lm_eval"
FIXED_DEMO_TASK = "xling_test_xnli_de_fixed_demos"
# shipped tasks run 5-shot (through a wrapper YAML that only sets num_fewshot) and 0-shot, in one run
FIVE_SHOT = [
    "xling_xnli_de_endemo",
    "xling_xnli_fr",
    "xling_pawsx_zh_endemo",
    "xling_pawsx_de",
    "xling_xcopa_et_endemo",
    "xling_xcopa_zh",
    "xling_xstorycloze_ar_endemo",
    "xling_xstorycloze_zh",
    "xling_xwinograd_fr_endemo",
]
ZERO_SHOT = [
    "xling_xnli_de",
    "xling_pawsx_ja",
    "xling_xcopa_et",
    "xling_xstorycloze_ar",
    "xling_xwinograd_zh",
    "xling_belebele_eng_Latn",
]
SOME_FIVE_SHOT = ["xling_xnli_de_endemo", "xling_xwinograd_fr_endemo", FIXED_DEMO_TASK]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """A sensitive tiny Llama, and a LoRA adapter on it whose tokenizer pads on the left."""
    from peft import LoraConfig, get_peft_model
    from transformers import ByT5Tokenizer

    from tests.test_prefix_scoring import sensitive_model

    root = tmp_path_factory.mktemp("prefix-sharing")
    model = sensitive_model("llama")
    model.save_pretrained(root / "base")
    ByT5Tokenizer().save_pretrained(root / "base")
    adapter = get_peft_model(model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    adapter.save_pretrained(root / "adapter")
    ByT5Tokenizer(padding_side="left").save_pretrained(root / "adapter")
    config_path = root / "adapter" / "adapter_config.json"
    config_path.write_text(json.dumps({**json.loads(config_path.read_text()), "base_model_name_or_path": "base"}))
    return root


@pytest.fixture(scope="module")
def five_shot_tasks(tmp_path_factory):
    """A folder of wrappers `<task>_5shot`: the shipped task (or the fixed-demonstration fixture), 5-shot."""
    from xling_align.evaluation import lm_eval_plugin

    folder = tmp_path_factory.mktemp("five-shot-tasks")
    shipped = {path.stem: path for path in Path(lm_eval_plugin.tasks_dir()).rglob("xling_*.yaml")}
    shipped[FIXED_DEMO_TASK] = FIXTURES / "fixed_demo_tasks" / f"{FIXED_DEMO_TASK}.yaml"
    for task in [*FIVE_SHOT, FIXED_DEMO_TASK]:
        (folder / f"{task}_5shot.yaml").write_text(
            f"include: {json.dumps(str(shipped[task].resolve()))}\ntask: {task}_5shot\nnum_fewshot: 5\n"
        )
    return folder


def run_lm_eval(
    output: Path, model: str, model_args: str, tasks: list[str], include_path: Path, batch_size: int = 8, limit: int = 3
) -> dict:
    """Run the `lm_eval` command line; returns (task, doc_id, choice) -> (log-likelihood, is_greedy)."""
    from lm_eval.__main__ import cli_evaluate

    argv = [
        "lm_eval",
        "run",
        "--model",
        model,
        "--model_args",
        model_args,
        "--device",
        "cpu",
        "--tasks",
        ",".join(tasks),
        "--batch_size",
        str(batch_size),
        "--limit",
        str(limit),
        "--include_path",
        str(include_path),
        "--metadata",
        json.dumps({"data_dir": str(FIXTURES / "data")}),
        "--log_samples",
        "--output_path",
        str(output),
    ]
    saved = sys.argv
    sys.argv = argv
    try:
        cli_evaluate()
    finally:
        sys.argv = saved
    scores = {}
    for path in output.rglob("samples_*.jsonl"):
        task = path.name[len("samples_") :].rsplit("_", 1)[0]  # samples_<task>_<timestamp>.jsonl
        for line in path.read_text(encoding="utf-8").splitlines():
            sample = json.loads(line)
            if task.endswith("_5shot"):  # the demonstrations are really there
                context = sample["arguments"]["gen_args_0"]["arg_0"]
                assert context.count("\n\n") >= 4, (task, context)
            for choice, response in enumerate(sample["resps"]):
                scores[(task, sample["doc_id"], choice)] = (float(response[0][0]), response[0][1] == "True")
    assert scores, f"no samples written under {output}"
    return scores


def assert_same_scores(ours: dict, theirs: dict) -> None:
    """The same requests, `is_greedy` equal, log-likelihoods within 1e-4 per 100 nats (at least 1e-4).

    The sums here reach -600 (the large weights of the sensitive model), where one float32 rounding step
    is 6e-5: hf itself moves by that much between batch sizes 1 and 8.
    """
    assert ours.keys() == theirs.keys()
    for key, (loglikelihood, greedy) in theirs.items():
        assert ours[key][0] == pytest.approx(loglikelihood, abs=max(1e-4, 1e-6 * abs(loglikelihood))), key
        assert ours[key][1] == greedy, key


def test_the_lm_eval_command_gives_hf_scores_zero_and_five_shot(folders, five_shot_tasks, tmp_path, monkeypatch):
    from xling_align.evaluation.prefix_scoring import PrefixTreeScorer

    tasks = ZERO_SHOT + [f"{task}_5shot" for task in [*FIVE_SHOT, FIXED_DEMO_TASK]]
    model_args = f"pretrained={folders / 'base'}"
    theirs = run_lm_eval(tmp_path / "hf", "hf", model_args, tasks, five_shot_tasks)
    shared = []
    original = PrefixTreeScorer.score
    monkeypatch.setattr(
        PrefixTreeScorer,
        "score",
        lambda self, requests, plan, **kwargs: (
            shared.append(len(requests) - len(plan.unshared)) or original(self, requests, plan, **kwargs)
        ),
    )
    ours = run_lm_eval(tmp_path / "xling", "xling", model_args, tasks, five_shot_tasks)
    assert sum(shared) > 0.9 * len(ours)  # nearly every request went through the shared path
    assert {key[0] for key in ours} == set(tasks)  # every task was scored
    assert_same_scores(ours, theirs)


# ------------------------------------------------------------------ the same, from Python, per model
def _evaluate(lm, tasks, shots, limit=2):
    import lm_eval
    from lm_eval.tasks import TaskManager

    from xling_align.evaluation import lm_eval_plugin

    lm_eval_plugin.register()
    manager = TaskManager(
        include_defaults=False,
        include_path=str(FIXTURES / "fixed_demo_tasks"),
        metadata={"data_dir": str(FIXTURES / "data")},
    )
    output = lm_eval.simple_evaluate(
        model=lm, tasks=tasks, task_manager=manager, num_fewshot=shots, log_samples=True, limit=limit
    )
    return {
        (task, sample["doc_id"], choice): (float(response[0][0]), bool(response[0][1]))
        for task, samples in output["samples"].items()
        for sample in samples
        for choice, response in enumerate(sample["resps"])
    }


def test_batch_size_one_gives_hf_scores(folders):
    from lm_eval.models.huggingface import HFLM

    from xling_align.evaluation.lm_eval_model import XlingLM

    common = dict(pretrained=str(folders / "base"), device="cpu")
    theirs = _evaluate(HFLM(batch_size=8, **common), SOME_FIVE_SHOT, 5, limit=3)
    xling = XlingLM(batch_size=1, **common)
    assert_same_scores(_evaluate(xling, SOME_FIVE_SHOT, 5, limit=3), theirs)
    assert xling.prefix_scoring_stats.forwards > 0
    assert not xling._prefix_scorer.pack_subtrees  # pack_rows=auto: one segment per row on a CPU
    with pytest.raises(ValueError, match="pack_rows=sometimes: expected True, False or auto"):
        XlingLM(pack_rows="sometimes", **common)


def test_requests_longer_than_the_window_are_truncated_as_hf_does(folders, caplog):
    from lm_eval.models.huggingface import HFLM

    from xling_align.evaluation.lm_eval_model import XlingLM

    # a 450-token window: some 5-shot byte-level requests fit, the others lose their start
    common = dict(pretrained=str(folders / "base"), device="cpu", batch_size=4, max_length=450)
    theirs = _evaluate(HFLM(**common), ["xling_xnli_de_endemo", "xling_xstorycloze_ar_endemo"], 5, limit=3)
    xling = XlingLM(**common)
    with caplog.at_level(logging.WARNING, logger="xling_align.evaluation.lm_eval_model"):
        ours = _evaluate(xling, ["xling_xnli_de_endemo", "xling_xstorycloze_ar_endemo"], 5, limit=3)
    truncated = [record.args[0] for record in caplog.records if "truncated from the left" in record.getMessage()]
    assert truncated and 0 < truncated[0] < len(ours)
    assert xling.prefix_scoring_stats.forwards > 0
    assert_same_scores(ours, theirs)


def test_a_lora_adapter_with_a_left_padding_tokenizer_gives_hf_scores(folders):
    from lm_eval.models.huggingface import HFLM

    from xling_align.evaluation.lm_eval_model import XlingLM

    adapter = str(folders / "adapter")
    theirs = _evaluate(
        HFLM(pretrained=str(folders / "base"), peft=adapter, tokenizer=adapter, device="cpu", batch_size=4),
        SOME_FIVE_SHOT,
        5,
    )
    xling = XlingLM(pretrained=adapter, device="cpu", batch_size=4)
    assert xling.tokenizer.padding_side == "left" and xling.adapter_path == adapter
    ours = _evaluate(xling, SOME_FIVE_SHOT, 5)
    assert xling.prefix_scoring_stats.forwards > 0
    assert_same_scores(ours, theirs)


def count_forwards(lm) -> list:
    """A list that grows by one entry per forward of `lm`'s model (the one-time checks included)."""
    calls = []
    lm.model.register_forward_pre_hook(lambda module, args: calls.append(1))
    return calls


@pytest.mark.parametrize("arch", ["xglm", "bloom", "gpt2", "qwen2"])
def test_other_architectures_score_equal_hf(arch, tmp_path, caplog):
    from lm_eval.models.huggingface import HFLM
    from transformers import ByT5Tokenizer

    from tests.test_prefix_scoring import sensitive_model
    from xling_align.evaluation.lm_eval_model import XlingLM

    sensitive_model(arch).save_pretrained(tmp_path / "model")
    # a tokenizer folder of its own: AutoTokenizer would read a qwen2 config.json and build a Qwen tokenizer
    ByT5Tokenizer().save_pretrained(tmp_path / "tokenizer")
    common = dict(pretrained=str(tmp_path / "model"), tokenizer=str(tmp_path / "tokenizer"), device="cpu", batch_size=4)
    xling, hf = XlingLM(pack_rows=True, **common), HFLM(**common)  # packed rows (on a CPU, not the default)
    hf_forwards = count_forwards(hf)
    with caplog.at_level(logging.WARNING, logger="xling_align.evaluation.lm_eval_model"):
        ours = _evaluate(xling, ["xling_xnli_de_endemo", "xling_xwinograd_fr_endemo"], 5)
    assert xling.prefix_scoring_stats.forwards > 0  # the shared path ran (no silent fallback)
    assert_same_scores(ours, _evaluate(hf, ["xling_xnli_de_endemo", "xling_xwinograd_fr_endemo"], 5))
    if arch == "bloom":  # ALiBi positions come from the 2D mask: no packed rows, and a warning says so
        assert "packing an item's context and choices into one forward row is off" in caplog.text
        assert "no position_ids" in caplog.text
    else:
        assert "xling:" not in caplog.text
        assert xling.prefix_scoring_stats.forwards < len(hf_forwards)  # fewer, larger forwards than hf


def test_fixed_demonstrations_are_computed_once_per_task(folders):
    from xling_align.evaluation.lm_eval_model import XlingLM

    xling = XlingLM(pretrained=str(folders / "base"), device="cpu", batch_size=8)
    requests = []
    original = xling._loglikelihood_tokens
    xling._loglikelihood_tokens = lambda reqs, **kwargs: (requests.extend(reqs), original(reqs, **kwargs))[1]
    _evaluate(xling, [FIXED_DEMO_TASK], 5, limit=8)
    inputs = [(context + continuation)[:-1] for _, context, continuation in requests]
    demos = len(inputs[0])
    for tokens in inputs:  # the prefix every request starts with: the five demonstrations
        demos = next((k for k in range(demos) if tokens[k] != inputs[0][k]), demos)
    assert demos > 300 and len(inputs) == 24
    # the demonstrations count once; every other token at most once per request
    assert xling.prefix_scoring_stats.tokens <= demos + sum(len(tokens) - demos for tokens in inputs)


def test_prefix_sharing_false_is_hf(folders):
    from lm_eval.models.huggingface import HFLM

    from xling_align.evaluation.lm_eval_model import XlingLM

    common = dict(pretrained=str(folders / "base"), device="cpu", batch_size=8)
    xling = XlingLM(prefix_sharing="False", **common)
    ours = _evaluate(xling, ["xling_pawsx_de_endemo"], 5)
    assert xling.prefix_scoring_stats is None
    assert ours == _evaluate(HFLM(**common), ["xling_pawsx_de_endemo"], 5)  # the same code: bit for bit


@pytest.mark.parametrize("family", ["gemma3", "mistral"])
def test_sliding_window_models_score_equal_hf(family, tmp_path, caplog):
    # windows of 5-6 tokens against 5-shot contexts of hundreds: the window cuts every shared prefix
    from lm_eval.models.huggingface import HFLM
    from transformers import ByT5Tokenizer

    from tests.test_prefix_scoring import sliding_window_model
    from xling_align.evaluation.lm_eval_model import XlingLM

    sliding_window_model(family).save_pretrained(tmp_path / "model")
    ByT5Tokenizer().save_pretrained(tmp_path / "tokenizer")
    common = dict(pretrained=str(tmp_path / "model"), tokenizer=str(tmp_path / "tokenizer"), device="cpu", batch_size=4)
    tasks = ["xling_xnli_de_endemo", "xling_xwinograd_fr_endemo"]
    for pack_rows in ("True", "False"):
        xling = XlingLM(pack_rows=pack_rows, **common)
        with caplog.at_level(logging.WARNING, logger="xling_align.evaluation.lm_eval_model"):
            ours = _evaluate(xling, tasks, 5)
        assert "xling:" not in caplog.text  # no fallback, no warning
        assert xling.prefix_scoring_stats.forwards > 0  # the shared path ran
        assert_same_scores(ours, _evaluate(HFLM(**common), tasks, 5))


def test_a_model_the_check_cannot_show_equal_falls_back_to_hf(tmp_path, caplog):
    # Gemma 3 with bidirectional attention (an embedding model's setting): tokens see their future, which a
    # continued cache cannot give; the check finds it, a warning says so, and the scores are hf's
    import transformers as tf
    from lm_eval.models.huggingface import HFLM

    from xling_align.evaluation.lm_eval_model import XlingLM

    config = tf.Gemma3TextConfig(
        vocab_size=384,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=8,
        query_pre_attn_scalar=8,
        sliding_window=12,
        use_bidirectional_attention=True,
        pad_token_id=0,
        max_position_embeddings=1024,
    )
    tf.Gemma3ForCausalLM(config).save_pretrained(tmp_path / "model")
    tf.ByT5Tokenizer().save_pretrained(tmp_path / "tokenizer")
    common = dict(pretrained=str(tmp_path / "model"), tokenizer=str(tmp_path / "tokenizer"), device="cpu", batch_size=4)
    xling = XlingLM(**common)
    with caplog.at_level(logging.WARNING, logger="xling_align.evaluation.lm_eval_model"):
        ours = _evaluate(xling, ["xling_xnli_de_endemo"], 2)
    assert "prefix sharing is off" in caplog.text and "differ from full forwards" in caplog.text
    assert ours == _evaluate(HFLM(**common), ["xling_xnli_de_endemo"], 2)


def test_rolling_loglikelihood_and_generation_take_hf_path(folders):
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    from xling_align.evaluation.lm_eval_model import XlingLM

    common = dict(pretrained=str(folders / "base"), device="cpu", batch_size=2)
    xling, hf = XlingLM(**common), HFLM(**common)
    texts = ["The cat sat on a warm mat. " * 3, "Die Katze sass auf einer warmen Matte."]
    rolling = [Instance("loglikelihood_rolling", {}, (text,), index) for index, text in enumerate(texts)]
    assert xling.loglikelihood_rolling(rolling) == hf.loglikelihood_rolling(rolling)
    generate = [
        Instance("generate_until", {}, (text, {"until": ["\n"], "max_gen_toks": 6, "do_sample": False}), index)
        for index, text in enumerate(texts)
    ]
    assert xling.generate_until(generate) == hf.generate_until(generate)
    assert xling.prefix_scoring_stats is None  # neither went near the prefix tree
