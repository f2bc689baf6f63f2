"""Tasks: a registry of learning problems, each owning its data, model head, loss, metrics and baseline.

``get_task(name)`` returns a task class; ``task_names()`` lists them. Importing this package registers the
built-in tasks. See :mod:`rnnlab.tasks.base` for the interface a new task implements.
"""

# Importing a task module registers it.
from rnnlab.tasks import (  # noqa: F401  (registration side effects)
    activity,
    adding,
    copy_memory,
    digits,
    events,
    forecast,
    handwriting,
    lm,
    mnist,
    music,
    sentiment,
    speech,
    transcribe,
    translate,
    video,
)
from rnnlab.tasks.base import (
    SPLITS,
    Batch,
    MetricAccumulator,
    MetricSums,
    Task,
    TaskOption,
    get_task,
    map_state,
    register_task,
    registered_tasks,
    task_names,
)

__all__ = [
    "SPLITS",
    "Batch",
    "MetricAccumulator",
    "MetricSums",
    "Task",
    "TaskOption",
    "get_task",
    "map_state",
    "register_task",
    "registered_tasks",
    "task_names",
]
