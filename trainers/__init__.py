"""TRL trainers of xling-align; installed as `xling_align.trainers`.

`AFPConfig` (a `trl.SFTConfig`) and `AFPTrainer` (a `trl.SFTTrainer`) implement AFP: supervised fine-tuning on
cross-lingual instructions plus a multilingual contrastive loss on translation pairs.
"""

from .afp_config import AFPConfig
from .afp_collator import AFPDataCollator
from .afp_trainer import AFPTrainer

__all__ = ["AFPConfig", "AFPDataCollator", "AFPTrainer"]
