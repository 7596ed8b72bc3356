"""TRL trainers of xling-align; installed as `xling_align.trainers`.

`AFPConfig` (a `trl.SFTConfig`) and `AFPTrainer` (a `trl.SFTTrainer`) implement AFP: supervised fine-tuning on
cross-lingual instructions plus a multilingual contrastive loss on translation pairs.

Beside the trainer (`afp_trainer.py`: the pair pass, the loss, the metrics, the pair head in checkpoints), one job
per module: `afp_config.py` (the arguments), `afp_dataset.py` (dataset preparation and row checks),
`afp_collator.py` (`AFPDataCollator`), `afp_packing.py` (packing with pairs), `afp_replay.py` (replay rows),
`pair_head.py` (the projection head's attachment and files), `subclass_checks.py` (what overridden hooks return),
`padding_free.py` (whether flattened batches are exact), `engine_checks.py` (engine setups refused),
`accelerators.py` (whether there is an accelerator) and `trl_workarounds.py` (every workaround of TRL /
transformers, with the version it targets and when it can go).
"""

from .afp_collator import AFPDataCollator
from .afp_config import AFPConfig
from .afp_trainer import AFPTrainer

__all__ = ["AFPConfig", "AFPDataCollator", "AFPTrainer"]
