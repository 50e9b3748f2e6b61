"""Score the production forecaster on ETTh1-format data under the protocol of shared/benchmarks/README.md.

Prints MSE / MAE per horizon for the production model selection, Prophet alone and the two naive baselines (last
value repeated, value one season earlier), beside the published table. Touches no database."""
import time
from pathlib import Path

import numpy as np
from django.core.management.base import BaseCommand, CommandError

from forecasting.ml import ett

# Informer paper, Table 1, univariate ETTh1 (MSE, MAE): only comparable on ETTh1 with the default split.
PUBLISHED = {
    24: {"Informer": (.098, .247), "ARIMA": (.108, .284), "Prophet": (.115, .275), "DeepAR": (.107, .280)},
    48: {"Informer": (.158, .319), "ARIMA": (.175, .424), "Prophet": (.168, .330), "DeepAR": (.162, .327)},
    168: {"Informer": (.183, .346), "ARIMA": (.396, .504), "Prophet": (1.224, .763), "DeepAR": (.239, .422)},
}


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser):
        parser.add_argument("--data", required=True, type=Path, help="CSV with a `date` column and the target column")
        parser.add_argument("--column", default="OT", help="target column (default OT)")
        parser.add_argument("--horizon", type=int, nargs="+", default=[24, 48, 168])
        parser.add_argument("--season", type=int, default=24, help="steps per seasonal cycle (24 for hourly data)")
        parser.add_argument(
            "--split", type=int, nargs=3, metavar=("TRAIN_END", "VAL_END", "TEST_END"),
            default=[ett.PROTOCOL.train_end, ett.PROTOCOL.val_end, ett.PROTOCOL.test_end],
            help="row ends of train / validation / test (default: the ETTh1 protocol's 8640 11520 14400); "
                 "only for files shorter than the protocol needs, e.g. tests",
        )
        parser.add_argument("--refit-every", type=int, default=168,
                            help="Prophet alone is refitted every N test origins (default 168)")
        parser.add_argument("--predictions-out", type=Path,
                            help="write the production forecasts to DIR/h<H>.csv (origin_index, step, yhat)")

    def handle(self, *args, data, column, horizon, season, split, refit_every, predictions_out, **options):
        if min(horizon) < 1 or season < 1 or refit_every < 1:
            raise CommandError("--horizon, --season and --refit-every must be positive")
        started = time.perf_counter()
        try:
            split = ett.Split(*split)
            series = ett.load_ett(data, column)
            if len(series) < split.test_end:
                raise ValueError(
                    f"{data} has {len(series)} rows; the split needs {split.test_end} (train [0, {split.train_end}), "
                    f"validation up to {split.val_end}, test up to {split.test_end}); for a shorter file pass "
                    "--split TRAIN_END VAL_END TEST_END")
            results = ett.run(series, split=split, horizons=sorted(set(horizon)), season=season,
                              refit_every=refit_every, log=lambda message: self.stderr.write(message))
        except ValueError as error:
            raise CommandError(str(error)) from error
        self._report(data, split, season, results, refit_every)
        if predictions_out:
            self._write_predictions(predictions_out, results)
        self.stdout.write(f"wall time {time.perf_counter() - started:.1f} s")

    def _report(self, data, split, season, results, refit_every):
        out = self.stdout
        out.write(f"{data.name}: train [0, {split.train_end}), validation [{split.train_end}, {split.val_end}), "
                  f"test [{split.val_end}, {split.test_end}); standardised with the train mean and std; "
                  "every test origin scored. MSE / MAE:")
        published = (split == ett.PROTOCOL and data.name.lower() == "etth1.csv")
        names = ["production", "Prophet alone", "naive (last value)", f"seasonal naive ({season} steps)"]
        if published:
            names += [f"{name} (published)" for name in PUBLISHED[24]]
        out.write(f"{'model':38}" + "".join(f"{'h=' + str(r.horizon):>18}" for r in results))
        keys = ["production", "prophet", "naive", "seasonal_naive"]
        for name, key in zip(names, keys):
            out.write(f"{name:38}" + "".join(
                f"{r.scores[key].mse:>9.4f} / {r.scores[key].mae:.4f}" for r in results))
        if published:
            for name in PUBLISHED[24]:
                out.write(f"{name + ' (Informer paper)':38}" + "".join(
                    f"{PUBLISHED[r.horizon][name][0]:>9.3f} / {PUBLISHED[r.horizon][name][1]:.3f}"
                    if r.horizon in PUBLISHED else f"{'-':>18}" for r in results))
        for r in results:
            better = min(r.scores["naive"].mse, r.scores["seasonal_naive"].mse)
            change = 100 * (r.scores["production"].mse / better - 1)
            out.write(f"h={r.horizon}: production chose {r.chosen}; its MSE is {abs(change):.1f} % "
                      f"{'below' if change < 0 else 'above'} the better naive baseline's "
                      f"({len(r.origins)} origins, {r.seconds:.1f} s)")
            seen = ", ".join(f"{name} {mase:.3f}" for name, mase in r.backtest_mase.items())
            out.write(f"  its backtest MASE: {seen}")
        out.write(f"Production: selected and fitted once on the rows before the test split, then forecasting every "
                  f"origin from the rows before it without refitting. Prophet alone: refitted every {refit_every} "
                  f"origins on all rows before them.")

    def _write_predictions(self, directory, results):
        directory.mkdir(parents=True, exist_ok=True)
        for r in results:
            steps = np.arange(1, r.horizon + 1)
            rows = np.column_stack([np.repeat(r.origins - 1, r.horizon), np.tile(steps, len(r.origins)),
                                    r.production_paths.ravel()])
            path = directory / f"h{r.horizon}.csv"
            np.savetxt(path, rows, delimiter=",", header="origin_index,step,yhat", comments="",
                       fmt=["%d", "%d", "%.6f"])
            self.stdout.write(f"wrote {path} ({len(rows)} rows)")
