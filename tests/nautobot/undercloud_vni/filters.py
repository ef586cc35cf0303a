from nautobot.apps.filters import (
    NaturalKeyOrPKMultipleChoiceFilter,
    NautobotFilterSet,
    SearchFilter,
    StatusModelFilterSetMixin,
    TenancyModelFilterSetMixin,
)

from .models import UCVNI, UCVNIGroup


class UCVNIGroupFilterSet(NautobotFilterSet):
    q = SearchFilter(filter_predicates={"name": "icontains", "description": "icontains"})

    class Meta:
        model = UCVNIGroup
        fields = ["id", "name", "description", "tags"]


class UCVNIFilterSet(NautobotFilterSet, StatusModelFilterSetMixin, TenancyModelFilterSetMixin):
    q = SearchFilter(
        filter_predicates={
            "name": "icontains",
            "ucvni_type": "icontains",
            "ucvni_group__name": "icontains",
            "ucvni_id": {"lookup_expr": "exact", "preprocessor": int},
        }
    )
    ucvni_group = NaturalKeyOrPKMultipleChoiceFilter(
        queryset=UCVNIGroup.objects.all(),
        to_field_name="name",
        label="UCVNI group (name or ID)",
    )

    class Meta:
        model = UCVNI
        fields = ["id", "name", "status", "tenant", "ucvni_group", "ucvni_id", "ucvni_type", "tags"]
