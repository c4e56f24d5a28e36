"""Evaluation: the paper's evaluation masks, the scores of a fill, and the report."""
