from django import forms
from django.contrib import admin, messages
from django.utils import timezone

from sensorhub.apikeys import api_key_create, api_key_revoke
from sensorhub.choices import Scope
from sensorhub.models import ApiKey, StorageBackend

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


class ApiKeyForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(choices=Scope.choices, widget=forms.CheckboxSelectMultiple)

    class Meta:
        model = ApiKey
        fields = ["name", "scopes", "sites", "sensors", "may_register_sensors", "expires_at"]


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    form = ApiKeyForm
    list_display = ("name", "prefix", "scope_list", "state", "expires_at", "last_used_at", "created_at")
    list_filter = (("revoked_at", admin.EmptyFieldListFilter), "created_at")
    search_fields = ("name", "prefix")
    readonly_fields = ("prefix", "last_used_at", "revoked_at", "created_by", "created_at")
    filter_horizontal = ("sites", "sensors")
    actions = ["revoke"]

    @admin.display(description="scopes")
    def scope_list(self, obj):
        return ", ".join(obj.scopes)

    @admin.display(description="state")
    def state(self, obj):
        if obj.revoked_at:
            return "revoked"
        if obj.expires_at and obj.expires_at <= timezone.now():
            return "expired"
        return "active"

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        key, secret = api_key_create(
            name=obj.name, scopes=form.cleaned_data["scopes"], expires_at=obj.expires_at,
            may_register_sensors=obj.may_register_sensors, created_by=request.user,
        )
        obj.pk, obj.prefix = key.pk, key.prefix
        obj._state.adding = False
        self.message_user(request, f"Copy the new key now, it will not be shown again: {secret}", messages.WARNING)

    def save_related(self, request, form, formsets, change):
        form.instance = ApiKey.objects.get(pk=form.instance.pk)
        form.save_m2m()

    @admin.action(description="Revoke selected keys")
    def revoke(self, request, queryset):
        revoked = sum(api_key_revoke(key=key) for key in queryset)
        self.message_user(request, f"{revoked} key(s) revoked.", messages.SUCCESS)
