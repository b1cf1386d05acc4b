"""average: the mean of the latest checkpoints, as a checkpoint of its own."""

import os

from zero import log
from zero.checkpoints import average_checkpoints, listed_checkpoints
from zero.errors import UserError
from zero.modes.mode import Mode


def run(config):
    """Average the last `average_last` checkpoints of output_dir into output_dir/averaged/."""
    paths = listed_checkpoints(config.output_dir)[-config.average_last :]
    if not paths:
        raise UserError(f"no checkpoints to average in {config.output_dir}")
    target = os.path.join(config.output_dir, "averaged", os.path.basename(paths[-1]))
    path = average_checkpoints(paths, target)
    names = ", ".join(map(os.path.basename, paths))
    log.info(f"averaged {len(paths)} checkpoints ({names}) into {path}")
    print(path)


MODE = Mode(
    "average",
    "average the last `average_last` checkpoints into `output_dir/averaged/`",
    run,
)
