from rest_framework import serializers

from anomalies.alerts import alert_model_version
from anomalies.models import Alert, AnomalyEvent


class AnomalyEventSerializer(serializers.ModelSerializer):
    sensor = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    model_version = serializers.IntegerField(source="model.version", read_only=True, allow_null=True)

    class Meta:
        model = AnomalyEvent
        fields = ["id", "sensor", "time", "value", "score", "kind", "explanation", "expected_low", "expected_high",
                  "model_version", "created_at"]


class DetectRequestSerializer(serializers.Serializer):
    sensor = serializers.CharField()
    # Each point is checked by the view, one error per bad item (index and reason), without a serializer per point.
    values = serializers.ListField(required=False, help_text="[{time, value}, …]: time ISO 8601 with an offset "
                                   "or epoch seconds, value a number.")
    start = serializers.DateTimeField(required=False)
    end = serializers.DateTimeField(required=False)

    def validate(self, attrs):
        if "values" in attrs and ("start" in attrs or "end" in attrs):
            raise serializers.ValidationError("Send either values or start/end, not both.")
        if "values" not in attrs and not ("start" in attrs and "end" in attrs):
            raise serializers.ValidationError("Send values: [{time, value}, …], or start and end of stored readings.")
        return attrs


class AlertSerializer(serializers.ModelSerializer):
    sensor = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    model_version = serializers.SerializerMethodField(help_text="Version of the anomaly or forecast model that "
                                                                "raised it.")
    acknowledged_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    resolved_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    notified = serializers.SerializerMethodField()

    class Meta:
        model = Alert
        fields = ["id", "sensor", "source", "status", "kind", "opened_at", "first_event_at", "last_event_at", "trigger_value",
                  "trigger_score", "peak_score", "explanation", "model_version", "acknowledged_at",
                  "acknowledged_by", "resolved_at", "resolved_by", "false_positive", "notified"]

    def get_model_version(self, alert) -> int | None:
        return alert_model_version(alert)

    def get_notified(self, alert) -> list[dict]:
        return [{"channel": d.channel.name, "kind": d.channel.kind, "status": d.status, "attempts": d.attempts,
                 "sent_at": d.sent_at} for d in alert.deliveries.all()]
