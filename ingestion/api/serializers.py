from rest_framework import serializers

from ingestion.models import Sensor, Site


class SiteSerializer(serializers.ModelSerializer):
    class Meta:
        model = Site
        fields = ["slug", "name", "description", "timezone", "latitude", "longitude", "created_at", "updated_at"]


class SensorSerializer(serializers.ModelSerializer):
    site = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    latest_time = serializers.DateTimeField(read_only=True, allow_null=True)
    latest_value = serializers.FloatField(read_only=True, allow_null=True)

    class Meta:
        model = Sensor
        fields = [
            "slug", "name", "type", "unit", "site", "active", "expected_interval", "valid_min", "valid_max",
            "retention_days", "latest_time", "latest_value", "created_at", "updated_at",
        ]
