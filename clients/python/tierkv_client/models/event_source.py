from enum import Enum

class EventSource(str, Enum):
    GATEWAY = "gateway"
    NODE = "node"

    def __str__(self) -> str:
        return str(self.value)
