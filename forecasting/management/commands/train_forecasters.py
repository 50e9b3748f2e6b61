"""Train (backtest and choose) the forecaster of every active sensor, or of the named ones, and print the choice.

By default trains here with --workers processes and prints each sensor's candidates' backtest MASE and the wall time
(the figure the issue's "all demo sensors trained and backtested in under 60 s" is about). --enqueue hands the work to
the Celery workers instead (what `make run` does at start-up)."""
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

from django.core.management.base import BaseCommand, CommandError
from django.db import connections

from forecasting import parallel
from forecasting.models import ForecastModel
from ingestion.models import Sensor


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser):
        parser.add_argument("--sensor", action="append", default=[], help="slug; repeat for several (default: all)")
        parser.add_argument("--missing", action="store_true", help="only sensors without a forecaster yet")
        parser.add_argument("--enqueue", action="store_true", help="queue the training for the Celery workers")
        parser.add_argument("--workers", type=int, default=2, help="processes when training here")

    def handle(self, *args, sensor, missing, enqueue, workers, **options):
        sensors = Sensor.objects.filter(active=True)
        if sensor:
            sensors = Sensor.objects.filter(slug__in=sensor)
            unknown = set(sensor) - set(sensors.values_list("slug", flat=True))
            if unknown:
                raise CommandError(f"no sensor with slug {', '.join(sorted(unknown))}")
        if missing:
            sensors = sensors.filter(forecast_models__isnull=True)
        ids = list(sensors.order_by("slug").values_list("pk", flat=True))
        if enqueue:
            from forecasting.tasks import train_model

            for sensor_id in ids:
                train_model.delay(sensor_id)
            self.stdout.write(f"queued forecaster training for {len(ids)} sensors")
            return
        if not ids:
            self.stdout.write("no sensors to train")
            return
        connections.close_all()  # the children open their own
        started = time.perf_counter()
        with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"), initializer=parallel.setup) as pool:
            results = list(pool.map(parallel.train, ids))
        wall = time.perf_counter() - started
        names = {pk: slug for pk, slug in Sensor.objects.filter(pk__in=ids).values_list("pk", "slug")}
        models = ForecastModel.objects.in_bulk([model_id for _, model_id, _ in results if model_id])
        self.stdout.write(f"{'sensor':<16}{'chosen':<16}{'version':>8}{'MASE':>8}{'cover':>7}{'seconds':>9}  "
                          f"backtest MASE of every candidate")
        for sensor_id, model_id, seconds in results:
            model = models.get(model_id)
            if model is None:
                self.stdout.write(f"{names[sensor_id]:<16}{'(warming up: not enough history)':<40}{seconds:>9.1f}")
                continue
            others = ", ".join(f"{name} {m['mase']:.3f}" if m.get("mase") is not None else f"{name} –"
                               for name, m in sorted(model.backtest.items()))
            coverage = f"{model.coverage:.2f}" if model.coverage is not None else "–"
            self.stdout.write(f"{names[sensor_id]:<16}{model.name:<16}{model.version:>8}{model.mase:>8.3f}"
                              f"{coverage:>7}{seconds:>9.1f}  {others}")
        self.stdout.write(f"{len(ids)} sensors in {wall:.1f} s wall time with {workers} processes "
                          f"(including their start-up)")
