from enum import Enum

class MemberStateName(str, Enum):
    ACTIVE = "active"
    DRAINING = "draining"
    RETIRED = "retired"

    def __str__(self) -> str:
        return str(self.value)
