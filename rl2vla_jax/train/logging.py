"""Run logging: TensorBoard events (W&B optional), NaN checks, the end-of-run summary table."""

import csv
import math
import os

from rl2vla_jax import files

SUMMARY_COLUMNS = (
    ("iteration", "iter", "{:d}"),
    ("return", "return", "{:.3f}"),
    ("success", "success", "{:.2f}"),
    ("success_once", "succ_once", "{:.2f}"),
    ("value_loss", "value_loss", "{:.4f}"),
    ("policy_entropy", "entropy", "{:.3f}"),
    ("time_simulator", "sim_s", "{:.1f}"),
    ("time_policy", "policy_s", "{:.1f}"),
    ("time_update", "update_s", "{:.1f}"),
    ("time_host", "host_s", "{:.1f}"),
)


def first_non_finite(metrics: dict[str, float]) -> str | None:
    """The first metric (in the order the update and the rollout report them) that is NaN or
    infinite, else None."""
    for key, value in metrics.items():
        if isinstance(value, float) and not math.isfinite(value):
            return key
    return None


class RunLogger:
    def __init__(self, workdir: str, use_wandb: bool = False, config=None, enabled: bool = True):
        """`enabled=False` (processes other than 0 of a multi-host run) keeps rows, writes nothing."""
        from tensorboardX import SummaryWriter

        self.workdir = workdir
        self.enabled = enabled
        self.writer = SummaryWriter(os.path.join(workdir, "tensorboard")) if enabled else None
        self.rows: list[dict] = []
        self.wandb = None
        if use_wandb and enabled:
            import wandb

            self.wandb = wandb.init(dir=workdir, config=config.to_dict() if config is not None else None)

    def keep_earlier_rows(self, before_iteration: int) -> None:
        """On resume: start the summary with the rows a previous run of this workdir wrote
        before `before_iteration` (the resumed checkpoint's). summary.csv is rewritten at every
        log, so a killed run leaves every row it logged; its rows from the checkpoint on are
        dropped, because the resumed run replays those iterations."""
        path = os.path.join(self.workdir, "summary.csv")
        if not os.path.exists(path):
            return
        with open(path, newline="") as f:
            for row in csv.DictReader(f):
                row = {k: float(v) for k, v in row.items() if v != ""}
                row["iteration"] = int(row["iteration"])
                if row["iteration"] < before_iteration:
                    self.rows.append(row)

    def log(self, iteration: int, metrics: dict[str, float]) -> None:
        bad = [k for k, v in metrics.items() if isinstance(v, float) and not math.isfinite(v)]
        if bad:
            raise FloatingPointError(f"non-finite metrics at iteration {iteration}: {', '.join(sorted(bad))}")
        if self.writer is not None:
            for key, value in metrics.items():
                self.writer.add_scalar(key, value, iteration)
            self.writer.flush()
        if self.wandb is not None:
            self.wandb.log(metrics, step=iteration)
        self.rows.append({"iteration": iteration, **metrics})
        self.summary()

    def summary(self) -> str:
        """A table of every logged iteration, also written to summary.md and summary.csv
        (each replaced whole, atomically: a kill never leaves half a file)."""
        header = "| " + " | ".join(title for _, title, _ in SUMMARY_COLUMNS) + " |"
        lines = [header, "|" + "---|" * len(SUMMARY_COLUMNS)]
        for row in self.rows:
            cells = [fmt.format(row[key]) if key in row else "-" for key, _, fmt in SUMMARY_COLUMNS]
            lines.append("| " + " | ".join(cells) + " |")
        table = "\n".join(lines)
        if not self.enabled:
            return table
        with files.replacing(os.path.join(self.workdir, "summary.md")) as f:
            f.write(table + "\n")
        keys = sorted({k for row in self.rows for k in row})
        with files.replacing(os.path.join(self.workdir, "summary.csv"), newline="") as f:
            writer = csv.DictWriter(f, fieldnames=keys)
            writer.writeheader()
            writer.writerows(self.rows)
        return table

    def close(self):
        if self.writer is not None:
            self.writer.close()
        if self.wandb is not None:
            self.wandb.finish()
