from enum import Enum

class FactsState(str, Enum):
    INVALID = "invalid"
    OK = "ok"
    UNREACHABLE = "unreachable"
    UNSUPPORTED = "unsupported"

    def __str__(self) -> str:
        return str(self.value)
