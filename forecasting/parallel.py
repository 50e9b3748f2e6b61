"""Process-pool entry points for training forecasters in parallel. Spawned children import this module before
Django is set up, so nothing here imports models at module level."""
import time


def setup() -> None:
    import django

    django.setup()


def train(sensor_id: int) -> tuple[int, int | None, float]:
    from forecasting.services import forecast_model_train
    from ingestion.models import Sensor

    started = time.perf_counter()
    model = forecast_model_train(sensor=Sensor.objects.get(pk=sensor_id))
    return sensor_id, (model.pk if model else None), time.perf_counter() - started
