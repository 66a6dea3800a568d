"""Evaluation of a policy on every setting of a suite: the episode runner (resumable, one
atomic result file per setting), the statistics (95% intervals) and the results folder
(per-seed table, summary in RL4VLA's layout, bar plot, videos)."""
