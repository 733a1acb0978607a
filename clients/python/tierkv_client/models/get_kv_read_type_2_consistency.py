from enum import Enum

class GetKvReadType2Consistency(str, Enum):
    EVENTUAL = "eventual"

    def __str__(self) -> str:
        return str(self.value)
