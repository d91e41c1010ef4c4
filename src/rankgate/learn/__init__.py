"""Learning from the user's data: training rows, hard-negative mining, fine-tuning, dev reports.

Importing this package is cheap; torch, transformers and accelerate load when training starts.
"""

from rankgate.learn.data import TrainingRow, check_rows, parse_records, read_rows, write_rows
from rankgate.learn.finetune import (
    FINETUNE_FILE,
    FinetuneOptions,
    FinetuneResult,
    finetune,
    finetune_options,
)
from rankgate.learn.mining import (
    MiningReport,
    RankWindow,
    mine_negatives,
    parse_ranks,
    teacher_scores,
)
from rankgate.learn.report import DevReport, dev_report, save_comparison_chart

__all__ = [
    "FINETUNE_FILE",
    "DevReport",
    "FinetuneOptions",
    "FinetuneResult",
    "MiningReport",
    "RankWindow",
    "TrainingRow",
    "check_rows",
    "dev_report",
    "finetune",
    "finetune_options",
    "mine_negatives",
    "parse_ranks",
    "parse_records",
    "read_rows",
    "save_comparison_chart",
    "teacher_scores",
    "write_rows",
]
