from enum import Enum

class Star(str, Enum):
    VALUE_0 = "*"

    def __str__(self) -> str:
        return str(self.value)
