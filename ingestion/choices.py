from django.db import models


class SensorType(models.TextChoices):
    TEMPERATURE = "temperature", "Temperature"
    HUMIDITY = "humidity", "Humidity"
    PRESSURE = "pressure", "Pressure"
    VIBRATION = "vibration", "Vibration"
    POWER = "power", "Power"
    CURRENT = "current", "Current"
    VOLTAGE = "voltage", "Voltage"
    FLOW = "flow", "Flow"
    LEVEL = "level", "Level"
    CO2 = "co2", "CO₂"
    LIGHT = "light", "Light"
    OTHER = "other", "Other"
