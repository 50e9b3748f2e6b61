from datetime import UTC, timedelta

from django.utils import timezone
from rest_framework import serializers

from ingestion.models import Sensor, Site
from ingestion.selectors import AGGREGATES, BUCKETS


class SiteSerializer(serializers.ModelSerializer):
    class Meta:
        model = Site
        fields = ["slug", "name", "description", "timezone", "latitude", "longitude", "created_at", "updated_at"]


class SensorSerializer(serializers.ModelSerializer):
    site = serializers.SlugRelatedField(slug_field="slug", queryset=Site.objects.all())
    latest_time = serializers.DateTimeField(read_only=True, allow_null=True)
    latest_value = serializers.FloatField(read_only=True, allow_null=True)

    class Meta:
        model = Sensor
        fields = [
            "slug", "name", "type", "unit", "site", "active", "expected_interval", "valid_min", "valid_max",
            "retention_days", "latest_time", "latest_value", "created_at", "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]

    def validate(self, attrs):
        low = attrs.get("valid_min", getattr(self.instance, "valid_min", None))
        high = attrs.get("valid_max", getattr(self.instance, "valid_max", None))
        if low is not None and high is not None and low >= high:
            raise serializers.ValidationError({"valid_max": "must be above valid_min"})
        return attrs


class SensorDetailSerializer(SensorSerializer):
    stats_24h = serializers.DictField(read_only=True)

    class Meta(SensorSerializer.Meta):
        fields = [*SensorSerializer.Meta.fields, "stats_24h"]


class ReadingsQuerySerializer(serializers.Serializer):
    start = serializers.DateTimeField(required=False, help_text="Default: 24 hours before end.")
    end = serializers.DateTimeField(required=False, help_text="Default: now.")
    bucket = serializers.ChoiceField(choices=["raw", *BUCKETS], required=False,
                                     help_text="Omitted: raw if it fits in max_points, else the finest bucket that does.")
    agg = serializers.CharField(required=False, default="avg", help_text=f"Comma-separated: {', '.join(AGGREGATES)}.")
    max_points = serializers.IntegerField(required=False, default=5000, min_value=1, max_value=100_000)
    format = serializers.ChoiceField(choices=["json", "csv"], required=False, default="json")

    def validate_agg(self, value):
        names = tuple(dict.fromkeys(part.strip() for part in value.split(",") if part.strip()))
        unknown = [n for n in names if n not in AGGREGATES]
        if unknown or not names:
            raise serializers.ValidationError(f"unknown aggregate(s) {unknown}; use any of {', '.join(AGGREGATES)}")
        return names

    def validate(self, attrs):
        end = (attrs.get("end") or timezone.now()).astimezone(UTC)
        start = (attrs.get("start") or end - timedelta(days=1)).astimezone(UTC)
        if start >= end:
            raise serializers.ValidationError({"start": "must be before end"})
        attrs.update(start=start, end=end)
        return attrs
