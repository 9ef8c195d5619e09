"""Inputs and their validation: the data contract (fields), tables, problems, USCC check digits, keys."""
