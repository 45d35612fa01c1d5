"""Datasets, task registry, split files and step datasets (see DESIGN.md)."""

from ucd.data.tasks import (
    SETTINGS,
    DatasetInfo,
    Task,
    check_setting,
    get_dataset_info,
    get_task,
    list_datasets,
    list_tasks,
)

__all__ = [
    "SETTINGS",
    "DatasetInfo",
    "Task",
    "check_setting",
    "get_dataset_info",
    "get_task",
    "list_datasets",
    "list_tasks",
]
