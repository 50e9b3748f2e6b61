from django.contrib import admin

from anomalies.models import Alert, AlertRule, AnomalyEvent, AnomalyModel, Delivery, NotificationChannel


@admin.register(AnomalyEvent)
class AnomalyEventAdmin(admin.ModelAdmin):
    list_display = ("sensor", "time", "kind", "score", "value", "model")
    list_filter = ("kind", "sensor__site", "sensor__type")
    search_fields = ("sensor__slug", "sensor__name", "explanation")
    date_hierarchy = "time"
    list_select_related = ("sensor", "model")
    readonly_fields = [f.name for f in AnomalyEvent._meta.fields]


@admin.register(AnomalyModel)
class AnomalyModelAdmin(admin.ModelAdmin):
    list_display = ("sensor", "version", "trained_at", "readings", "data_start", "data_end", "sha256")
    list_filter = ("sensor__site",)
    search_fields = ("sensor__slug",)
    readonly_fields = [f.name for f in AnomalyModel._meta.fields]


@admin.register(AlertRule)
class AlertRuleAdmin(admin.ModelAdmin):
    list_display = ("sensor", "threshold", "clear_below", "min_duration", "resolve_after", "cooldown", "enabled",
                    "forecast_above", "forecast_below", "forecast_within", "forecast_enabled")
    list_filter = ("enabled",)
    search_fields = ("sensor__slug", "sensor__name")
    autocomplete_fields = ("sensor",)


class DeliveryInline(admin.TabularInline):
    model = Delivery
    extra = 0
    readonly_fields = ("channel", "status", "attempts", "last_error", "response_status", "created_at", "sent_at")
    can_delete = False


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    list_display = ("sensor", "source", "kind", "status", "opened_at", "peak_score", "false_positive",
                    "acknowledged_by")
    list_filter = ("source", "status", "kind", "false_positive", "sensor__site")
    search_fields = ("sensor__slug", "sensor__name", "explanation")
    list_select_related = ("sensor", "acknowledged_by")
    readonly_fields = [f.name for f in Alert._meta.fields]
    inlines = [DeliveryInline]


@admin.register(NotificationChannel)
class NotificationChannelAdmin(admin.ModelAdmin):
    list_display = ("name", "kind", "target", "active")
    list_filter = ("kind", "active")
    filter_horizontal = ("sites",)
