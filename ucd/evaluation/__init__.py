"""Evaluation: confusion matrix over the validation set, per-class IoU, paper columns."""

from ucd.evaluation.metrics import confusion_matrix, mean_iou, per_class_iou, summarize

__all__ = ["confusion_matrix", "mean_iou", "per_class_iou", "summarize"]
