from django.contrib import admin

from sensorhub.models import StorageBackend

admin.site.site_header = "Sensor Hub administration"
admin.site.site_title = "Sensor Hub"
admin.site.index_title = "Sites, sensors, models and schedules"


@admin.register(StorageBackend)
class StorageBackendAdmin(admin.ModelAdmin):
    list_display = ("strategy", "timescaledb_version", "postgres_version", "chosen_at")
    readonly_fields = ("strategy", "timescaledb_version", "postgres_version", "reason", "chosen_at")

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
