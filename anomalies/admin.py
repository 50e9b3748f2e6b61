from django.contrib import admin

from anomalies.models import AnomalyEvent, AnomalyModel


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
