"""AFP steps on a model sharded by FSDP2 (or DeepSpeed ZeRO) in 2 gloo processes, or on one process with the whole
batch.

Run by tests/test_sharded_training.py: under torchrun as `python sharded_afp_script.py ENGINE OUT_DIR RESULT.pt`
(ENGINE: fsdp2, fsdp2-head, ddp, zero2, zero3; XLING_SHARDED_DEVICE=cuda runs it on GPUs with NCCL), and imported
in the test process for the one-process reference.
accelerate does not run FSDP or DeepSpeed on a CPU, so the model is wrapped here directly, as accelerate does
on GPUs (FSDP2: `fully_shard` on every decoder block, then on the root), and each step is the Trainer's own
`training_step` (AFPTrainer.compute_loss: pair pass, instruction pass, all-gathered InfoNCE) on that model.
"""

import os
import sys

import torch
from datasets import Dataset
from torch import nn
from transformers import ByT5Tokenizer, LlamaConfig, LlamaForCausalLM

from xling_align import AFPConfig, AFPTrainer

ROWS = {
    "prompt": [
        "Greet. Answer in German:",
        "Thank. Answer in French:",
        "Count. Answer in Spanish:",
        "Name a colour. Answer in German:",
        "Say yes. Answer in French:",
        "Say no. Answer in German:",
        "Count to two. Answer in French:",
        "Say bye. Answer in Spanish:",
    ],
    "completion": [" Hallo!", " Merci beaucoup.", " uno", " Blau", " Oui", " Nein", " un, deux", " Adios"],
    # rows 6 and 7 have no pair: in the second step the second process holds no pair (a stand-in pass)
    "source_sentence": [
        "Good morning",
        "Thank you",
        "The cat sleeps.",
        "Where is it?",
        "I am here.",
        "The sky is blue.",
        "",
        "",
    ],
    "target_sentence": [
        "Guten Morgen",
        "Merci",
        "El gato duerme.",
        "Wo ist es?",
        "Je suis ici.",
        "Der Himmel ist blau.",
        "",
        "",
    ],
}
STEP_ROWS = [[0, 1, 2, 3], [4, 5, 6, 7], [2, 3, 0, 1]]  # global batch of each step; rank r takes 2 rows
# small enough that three steps stay in the regime where float rounding does not grow (InfoNCE at 0.05)
LEARNING_RATE = 0.05
SENTENCES = ["Good morning", "Guten Morgen", "El gato duerme.", "Wo ist es?", "a"]
# "cuda" for the GPU check (benchmarks/gpu_sharding_check.py): NCCL, the model on the process's GPU
DEVICE = os.environ.get("XLING_SHARDED_DEVICE", "cpu")


def build_model(seed=0):
    torch.manual_seed(seed)
    return LlamaForCausalLM(
        LlamaConfig(
            vocab_size=384,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=3,
            num_attention_heads=4,
            num_key_value_heads=2,
            pad_token_id=0,
            eos_token_id=1,
            bos_token_id=1,
        )
    )


def build_head(seed=1):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(32, 16), nn.Tanh())


def make_trainer(output_dir, model, with_head=False):
    distributed = "RANK" in os.environ
    backend = ("gloo" if DEVICE == "cpu" else "nccl") if distributed else None
    args = AFPConfig(
        output_dir=output_dir,
        per_device_train_batch_size=2,
        optim="sgd",
        learning_rate=LEARNING_RATE,
        activation_checkpointing=False,
        save_strategy="no",
        report_to="none",
        use_cpu=DEVICE == "cpu",
        ddp_backend=backend,
        seed=0,
        disable_tqdm=True,
        contrastive_symmetric=True,
        shuffle_dataset=False,
    )
    return AFPTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_dict(ROWS),
        processing_class=ByT5Tokenizer(),
        pair_head=build_head() if with_head else None,
    )


def batch_of(trainer, rows):
    return trainer._prepare_inputs(trainer.data_collator([trainer.train_dataset[i] for i in rows]))


def full_state(model):
    """Every weight as a plain tensor (DTensor shards and ZeRO partitions gathered)."""
    engine = getattr(model, "zero_optimization_stage", None)
    if engine is not None and model.zero_optimization_stage() == 3:
        import deepspeed

        with deepspeed.zero.GatheredParameters(list(model.module.parameters())):
            return {name: p.detach().clone() for name, p in model.module.named_parameters()}
    module = getattr(model, "module", model)
    return {
        name: (p.full_tensor() if hasattr(p, "full_tensor") else p).detach().clone()
        for name, p in module.named_parameters()
    }


def full_grads(model):
    module = getattr(model, "module", model)
    grads = {}
    for name, p in module.named_parameters():
        grad = p.grad
        if grad is None and getattr(model, "zero_optimization_stage", None) is not None:
            from deepspeed.utils import safe_get_full_grad

            grad = safe_get_full_grad(p)
        if grad is not None:
            grads[name] = (grad.full_tensor() if hasattr(grad, "full_tensor") else grad).detach().clone()
    return grads


def shard_with_fsdp2(model):
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    mesh = init_device_mesh(DEVICE, (int(os.environ["WORLD_SIZE"]),))
    for block in model.model.layers:
        fully_shard(block, mesh=mesh)
    fully_shard(model, mesh=mesh)
    return model


def wrap_with_deepspeed(model, stage):
    import deepspeed

    config = {
        "train_micro_batch_size_per_gpu": 2,
        "gradient_accumulation_steps": 1,
        "zero_optimization": {"stage": stage},
        "zero_allow_untested_optimizer": True,
        "optimizer": {"type": "SGD", "params": {"lr": LEARNING_RATE}},
        "gradient_clipping": 0.0,
    }
    engine, *_ = deepspeed.initialize(model=model, model_parameters=model.parameters(), config=config)
    return engine


def run(engine_name, output_dir, steps=None):
    """Train `steps` AFP steps (all of `STEP_ROWS` by default); return losses, the first step's gradients, the weights
    and embeddings."""
    steps = len(STEP_ROWS) if steps is None else steps
    distributed = "RANK" in os.environ
    rank, world = (int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])) if distributed else (0, 1)
    with_head = engine_name.endswith("-head")
    trainer = make_trainer(output_dir, build_model(), with_head=with_head)
    model = trainer.model
    if distributed and engine_name.startswith("fsdp2"):
        model = shard_with_fsdp2(model)
    if distributed and engine_name == "ddp":
        from torch.nn.parallel import DistributedDataParallel

        model = DistributedDataParallel(model, device_ids=None if DEVICE == "cpu" else [model.device.index])
    deepspeed_engine = distributed and engine_name.startswith("zero")
    if deepspeed_engine:
        model = wrap_with_deepspeed(model, int(engine_name[4]))
        trainer.accelerator.backward = lambda loss, **kwargs: model.backward(loss)
    optimizer = None if deepspeed_engine else torch.optim.SGD(model.parameters(), lr=LEARNING_RATE)
    trainer.current_gradient_accumulation_steps = 1
    losses, contrastive, first_grads = [], [], None
    for step, rows in enumerate(STEP_ROWS[:steps]):
        local_rows = rows[rank * len(rows) // world : (rank + 1) * len(rows) // world]
        batch = batch_of(trainer, local_rows)
        num_items = trainer._get_num_items_in_batch([batch], trainer.accelerator.device)
        loss = trainer.training_step(model, batch, num_items)
        # the logged loss of a step is the mean over processes, as the Trainer reports it
        losses.append(trainer.accelerator.gather(loss.reshape(1)).mean().item())
        # the step's (loss, accuracy), kept on the device until the trainer logs
        contrastive.append(trainer._pending_pair_metrics["train"][-1][0].item())
        if step == 0:
            first_grads = full_grads(model)
        if deepspeed_engine:
            model.step()
        else:
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
    from xling_align.alignment.pooling import embed_sentences

    embeddings = embed_sentences(model, trainer.processing_class, SENTENCES, layer=1, pooling="last")
    return {
        "losses": losses,
        "contrastive": contrastive,
        "grads": first_grads,
        "state": full_state(model),
        "embeddings": embeddings,
        "trainer": trainer,
        "model": model,
    }


def save_and_reload_fsdp2(model, directory):
    """Save the sharded model as one full checkpoint (rank 0 writes), then reload it and shard it again."""
    import torch.distributed as dist
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    state = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    if int(os.environ["RANK"]) == 0:
        fresh = build_model(seed=123)
        fresh.load_state_dict(state)
        fresh.save_pretrained(directory)
    dist.barrier()
    return LlamaForCausalLM.from_pretrained(directory)


if __name__ == "__main__":
    engine_name, output_dir, result_file = sys.argv[1:4]
    result = run(engine_name, output_dir)
    model, trainer = result.pop("model"), result.pop("trainer")
    if engine_name == "fsdp2":
        # a checkpoint: saved from the shards, reloaded, sharded again; one more step must match one process
        reloaded = save_and_reload_fsdp2(model, os.path.join(output_dir, "checkpoint"))
        result["reloaded_state"] = {name: p.detach().clone() for name, p in reloaded.named_parameters()}
        resumed = make_trainer(output_dir, reloaded)
        sharded = shard_with_fsdp2(resumed.model)
        optimizer = torch.optim.SGD(sharded.parameters(), lr=LEARNING_RATE)
        resumed.current_gradient_accumulation_steps = 1
        rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
        rows = STEP_ROWS[0]
        batch = batch_of(resumed, rows[rank * len(rows) // world : (rank + 1) * len(rows) // world])
        resumed.training_step(sharded, batch, resumed._get_num_items_in_batch([batch], resumed.accelerator.device))
        optimizer.step()
        result["after_resume"] = full_state(sharded)
    if int(os.environ.get("RANK", "0")) == 0:
        torch.save(result, result_file)
