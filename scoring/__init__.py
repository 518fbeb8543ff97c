"""Batch scoring: latest feature rows -> probabilities, scores, tiers -> score tables in the warehouse."""
