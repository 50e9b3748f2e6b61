from django.contrib import admin

from forecasting.models import Forecast, ForecastModel


@admin.register(ForecastModel)
class ForecastModelAdmin(admin.ModelAdmin):
    list_display = ("sensor", "version", "name", "mase", "mae", "coverage", "realised_mae", "realised_coverage",
                    "realised_forecasts", "trained_at", "fit_seconds")
    list_filter = ("name", "sensor__site")
    search_fields = ("sensor__slug", "sensor__name")
    list_select_related = ("sensor",)
    readonly_fields = [f.name for f in ForecastModel._meta.fields]


@admin.register(Forecast)
class ForecastAdmin(admin.ModelAdmin):
    list_display = ("sensor", "origin", "model", "created_at", "realised_mae", "realised_coverage")
    list_filter = ("sensor__site",)
    search_fields = ("sensor__slug",)
    date_hierarchy = "origin"
    list_select_related = ("sensor", "model")
    readonly_fields = [f.name for f in Forecast._meta.fields]
