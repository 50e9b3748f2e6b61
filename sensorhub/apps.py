from django.apps import AppConfig


class SensorhubConfig(AppConfig):
    name = "sensorhub"
    verbose_name = "Sensor Hub platform"
