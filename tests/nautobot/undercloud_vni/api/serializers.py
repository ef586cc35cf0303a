from nautobot.apps.api import NautobotModelSerializer, TaggedModelSerializerMixin

from ..models import UCVNI, UCVNIGroup


class UCVNIGroupSerializer(TaggedModelSerializerMixin, NautobotModelSerializer):
    class Meta:
        model = UCVNIGroup
        fields = "__all__"


class UCVNISerializer(TaggedModelSerializerMixin, NautobotModelSerializer):
    class Meta:
        model = UCVNI
        fields = "__all__"
        # Without this DRF checks unique_together itself and answers
        # {"non_field_errors": [...]}; the model's full_clean() gives the
        # {"__all__": [...]} text the real app answers with.
        validators = []
