from enum import Enum

class GetKvReadType1Consistency(str, Enum):
    EVENTUAL = "eventual"

    def __str__(self) -> str:
        return str(self.value)
