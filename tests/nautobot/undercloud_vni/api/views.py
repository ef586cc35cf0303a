from nautobot.apps.api import NautobotModelViewSet

from .. import filters, models
from . import serializers


class UCVNIGroupViewSet(NautobotModelViewSet):
    queryset = models.UCVNIGroup.objects.all()
    serializer_class = serializers.UCVNIGroupSerializer
    filterset_class = filters.UCVNIGroupFilterSet


class UCVNIViewSet(NautobotModelViewSet):
    queryset = models.UCVNI.objects.select_related("status", "tenant", "ucvni_group")
    serializer_class = serializers.UCVNISerializer
    filterset_class = filters.UCVNIFilterSet
