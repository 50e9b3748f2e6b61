"""Run the production detector over the NAB files and score it with our implementation of NAB's scoring."""
import statistics
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pandas as pd
from django.core.management.base import BaseCommand, CommandError

from anomalies.nab import PROFILES, load_windows, score_corpus
from anomalies.streaming import score_file

# ../shared/benchmarks/README.md: published scores on these 24 files (standard, low FP, low FN).
PUBLISHED = [
    ("ARTime", 67.3, 56.3, 73.4), ("Numenta HTM", 66.5, 59.4, 70.8), ("HTM (numentaTM)", 61.6, 48.1, 66.9),
    ("CAD OSE", 60.0, 56.2, 65.6), ("KNN CAD", 54.7, 43.3, 61.0), ("Random Cut Forest", 51.9, 33.7, 58.2),
    ("Relative Entropy", 50.0, 42.2, 54.4), ("earthgecko Skyline", 48.3, 38.4, 53.3),
    ("Twitter ADVec", 33.9, 23.9, 39.6), ("Windowed Gaussian", 24.3, 6.8, 31.8), ("null", 0.0, 0.0, 0.0),
]


def _score(args):
    source, target = args
    timestamps, scores, rate = score_file(source, target)
    return timestamps, scores, rate


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser):
        parser.add_argument("--data", required=True, type=Path, help="NAB folder with windows.json and data/.")
        parser.add_argument("--scores-out", type=Path, help="Also keep each file's timestamp,anomaly_score CSV here.")
        parser.add_argument("--workers", type=int, default=2)

    def handle(self, *args, data, scores_out, workers, **options):
        windows_path = data / "windows.json"
        if not windows_path.exists():
            raise CommandError(f"{windows_path} not found: --data must be the NAB folder")
        windows = load_windows(windows_path)
        keys = [key for key in sorted(windows) if (data / "data" / key).exists()]
        if not keys:
            raise CommandError(f"no data files listed in windows.json exist under {data / 'data'}")
        jobs = [(data / "data" / key, scores_out / key if scores_out else None) for key in keys]
        with ProcessPoolExecutor(max_workers=workers) as pool:
            outputs = list(pool.map(_score, jobs))
        results = {key: (pd.to_datetime(ts), scores) for key, (ts, scores, _) in zip(keys, outputs)}
        ours = score_corpus(results, windows)
        rows = sum(len(ts) for ts, _, _ in outputs)
        rate = statistics.median(r for _, _, r in outputs)
        self.stdout.write(f"NAB, {len(keys)} files, {rows:,} readings, one threshold per profile shared by all files; "
                          f"detector speed (median per file, one core): {rate:,.0f} readings/s\n")
        self.stdout.write(f"{'detector':<22}{'standard':>10}{'low FP':>10}{'low FN':>10}")
        names = list(PROFILES)
        line = "".join(f"{ours[name][1]:>10.1f}" for name in names)
        table = [("Sensor Hub (this run)", None)] + [(p[0], p[1:]) for p in PUBLISHED]
        for name, published in table:
            cells = line if published is None else "".join(f"{v:>10.1f}" for v in published)
            self.stdout.write(f"{name:<22}{cells}")
        self.stdout.write("thresholds: " + ", ".join(f"{n} {ours[n][0]:.4f}" for n in names))
