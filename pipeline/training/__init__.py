"""Training: the labelled corpus and frozen split, grouped cross-validated model selection,
evaluation reports and the quality gate."""
