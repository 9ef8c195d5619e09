"""Rating and scoring: schemes (presets in schemes/), indicators, groups, scores, grades, evaluate()."""
