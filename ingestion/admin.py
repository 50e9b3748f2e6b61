from django.contrib import admin, messages
from django.db.models import Count
from django.utils import timezone
from django.utils.timesince import timesince
from django.utils.translation import ngettext

from ingestion.models import Sensor, Site
from ingestion.selectors import sensors_with_latest


class SensorInline(admin.TabularInline):
    model = Sensor
    fields = ("slug", "name", "type", "unit", "active")
    show_change_link = True
    extra = 0


@admin.register(Site)
class SiteAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "timezone", "sensor_count", "updated_at")
    search_fields = ("name", "slug", "description")
    prepopulated_fields = {"slug": ("name",)}
    inlines = [SensorInline]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_sensor_count=Count("sensors"))

    @admin.display(description="sensors", ordering="_sensor_count")
    def sensor_count(self, obj):
        return obj._sensor_count


class FreshnessFilter(admin.SimpleListFilter):
    title = "reporting"
    parameter_name = "reporting"

    def lookups(self, request, model_admin):
        return [("never", "never reported"), ("stale", "no reading in the last hour"), ("fresh", "reported in the last hour")]

    def queryset(self, request, queryset):
        hour_ago = timezone.now() - timezone.timedelta(hours=1)
        if self.value() == "never":
            return queryset.filter(latest_time__isnull=True)
        if self.value() == "stale":
            return queryset.filter(latest_time__lt=hour_ago)
        if self.value() == "fresh":
            return queryset.filter(latest_time__gte=hour_ago)
        return queryset


@admin.register(Sensor)
class SensorAdmin(admin.ModelAdmin):
    list_display = ("slug", "name", "type", "site", "active", "latest_reading", "latest_age", "expected_interval")
    list_display_links = ("slug", "name")
    list_filter = ("type", "site", "active", FreshnessFilter)
    list_select_related = ("site",)
    search_fields = ("slug", "name", "site__name", "site__slug", "unit")
    readonly_fields = ("created_at", "updated_at")
    actions = ["activate", "deactivate"]
    fieldsets = [
        (None, {"fields": ("slug", "name", "type", "unit", "site", "active")}),
        ("Reporting and validation", {"fields": ("expected_interval", ("valid_min", "valid_max"), "retention_days")}),
        ("History", {"fields": ("created_at", "updated_at")}),
    ]

    def get_queryset(self, request):
        return sensors_with_latest(super().get_queryset(request))

    @admin.display(description="latest reading", ordering="latest_value")
    def latest_reading(self, obj):
        if obj.latest_value is None:
            return "—"
        return f"{obj.latest_value:.4g} {obj.unit}"

    @admin.display(description="age", ordering="-latest_time")
    def latest_age(self, obj):
        if obj.latest_time is None:
            return "never reported"
        return f"{timesince(obj.latest_time)} ago"

    @admin.action(description="Activate selected sensors", permissions=["change"])
    def activate(self, request, queryset):
        self._set_active(request, queryset, True)

    @admin.action(description="Deactivate selected sensors (they keep their history)", permissions=["change"])
    def deactivate(self, request, queryset):
        self._set_active(request, queryset, False)

    def _set_active(self, request, queryset, active: bool):
        # Only rows that change are counted, so the message is honest when some already had that state.
        changed = Sensor.objects.filter(pk__in=queryset.values("pk")).exclude(active=active).update(
            active=active, updated_at=timezone.now()
        )
        word = "activated" if active else "deactivated"
        self.message_user(
            request, ngettext("%d sensor %s.", "%d sensors %s.", changed) % (changed, word), messages.SUCCESS
        )
