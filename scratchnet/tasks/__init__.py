"""scratchnet.tasks: the same ConvNet at work on 1D signals and on 3D volumes.

- `heartbeats`: ECG-like signals of five heart rhythms, classified by a Conv1d
  network (input (N, 1, L));
- `volumes`: CT-like volumes, healthy or with a lesion (a nodule or a cyst),
  classified by a Conv3d network (input (N, 1, D, H, W));
- `classify`: the model both use (`ConvClassifier`, written once for any
  number of spatial dimensions), the training loop, the baselines, and
  `TaskResult`, what each task's `run(settings=None, quick=False,
  progress=None)` returns;
- `pictures`: the pictures a run returns, drawn with Pillow.

Both tasks generate their data from a seed, in the project: nothing is
downloaded.
"""

from . import classify, heartbeats, pictures, volumes
from .classify import TaskResult

TASKS = {"heartbeats": heartbeats, "volumes": volumes}   # name -> module with run()

__all__ = ["classify", "heartbeats", "volumes", "pictures", "TaskResult", "TASKS"]
