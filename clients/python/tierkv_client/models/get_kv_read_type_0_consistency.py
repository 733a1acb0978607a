from enum import Enum

class GetKvReadType0Consistency(str, Enum):
    STRONG = "strong"

    def __str__(self) -> str:
        return str(self.value)
